// Mlp: a stack of Dense layers, each followed by ReLU and, if a dropout rate is given, by
// Dropout (worker/nn/dropout.h, training passes only): the hidden layers of a tower, a head, a
// shared bottom or an expert.
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
#include "worker/nn/dropout.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class Mlp {
 public:
  // Adds layer i as Dense "<name>.<i>" of width widths[i] to *params, which must outlive the
  // stack; with dropout_rate > 0, each layer's ReLU output goes through a Dropout of that rate
  // in the training passes of params->forward_mode(). REQUIRES: input_dim and every width
  // >= 1; dropout_rate in [0, 1).
  Mlp(ParameterSet* params, absl::string_view name, int input_dim,
      absl::Span<const uint32_t> widths, float dropout_rate = 0.0f);
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
  std::vector<std::unique_ptr<Dropout>> dropouts_;  // one per layer, or none
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_MLP_H_
