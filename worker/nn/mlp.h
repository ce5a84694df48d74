// Mlp: a stack of Dense layers, each followed by ReLU: the hidden layers of a tower, a shared
// bottom or an expert.
//
// With no layers the stack is the identity: Forward returns its input and Backward its
// d_output, so a head without hidden layers needs no special case.
//
// Not thread-safe: the layers keep activations; one thread at a time.
#ifndef GRANARY_WORKER_NN_MLP_H_
#define GRANARY_WORKER_NN_MLP_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/nn/activation.h"
#include "worker/nn/dense.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class Mlp {
 public:
  // Adds layer i as Dense "<name>.<i>" of width widths[i] to *params, which must outlive the
  // stack. REQUIRES: input_dim and every width >= 1.
  Mlp(ParameterSet* params, absl::string_view name, int input_dim,
      absl::Span<const uint32_t> widths);
  Mlp(const Mlp&) = delete;
  Mlp& operator=(const Mlp&) = delete;

  // Returns the [B, output_dim()] output, valid until the next Forward (with no layers:
  // `input` itself). REQUIRES: as Dense::Forward.
  const Matrix& Forward(const Matrix& input);
  // Given d_output for the last Forward's batch, adds the parameter gradients and returns
  // d_input, valid until the next Backward (with no layers: `d_output` itself).
  const Matrix& Backward(const Matrix& d_output);

  int input_dim() const { return input_dim_; }
  int output_dim() const { return output_dim_; }

 private:
  const int input_dim_;
  int output_dim_;
  std::vector<std::unique_ptr<Dense>> layers_;
  std::vector<std::unique_ptr<Activation>> activations_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_MLP_H_
