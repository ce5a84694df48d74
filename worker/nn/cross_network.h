// CrossNetwork: the cross layers of DCN-V2 (Wang et al., WWW 2021), explicit feature crosses
// of bounded degree over a concatenated input: layer l maps x_l to
//   x_{l+1} = x_0 * (x_l W_l + b_l) + x_l          (* elementwise)
// so L layers hold every product of up to L + 1 input features, which ReLU MLPs learn only
// approximately (an MLP struggles to form even the dot product of two embeddings).
//
// Shapes: input x_0 [B, dim], W_l [dim, dim], b_l [1, dim], output x_L [B, dim]. With no
// layers the network is the identity. Each layer's Forward is one GEMM; Backward is two.
//
// Not thread-safe: the layer keeps its activations; one thread at a time.
#ifndef GRANARY_WORKER_NN_CROSS_NETWORK_H_
#define GRANARY_WORKER_NN_CROSS_NETWORK_H_

#include <vector>

#include "absl/strings/string_view.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class CrossNetwork {
 public:
  // Adds "<name>.<l>/weight" (Glorot uniform) and "<name>.<l>/bias" (zeros) for each of
  // `num_layers` layers to *params, which must outlive the network. REQUIRES: dim >= 1,
  // num_layers >= 0.
  CrossNetwork(ParameterSet* params, absl::string_view name, int dim, int num_layers);
  CrossNetwork(const CrossNetwork&) = delete;
  CrossNetwork& operator=(const CrossNetwork&) = delete;

  // Returns x_L [B, dim], valid until the next Forward (the input itself when there are no
  // layers). Keeps a pointer to `input` for Backward. REQUIRES: input.cols() == dim();
  // `input` stays alive and unchanged until Backward returns.
  const Matrix& Forward(const Matrix& input);

  // Given d_output [B, dim] for the last Forward's batch, adds the parameter gradients into
  // their blocks' grad and returns d_input [B, dim], valid until the next Backward.
  const Matrix& Backward(const Matrix& d_output);

  int dim() const { return dim_; }
  int num_layers() const { return static_cast<int>(weights_.size()); }

 private:
  const int dim_;
  std::vector<ParamBlock*> weights_;
  std::vector<ParamBlock*> biases_;
  const Matrix* input_ = nullptr;
  std::vector<Matrix> outputs_;  // outputs_[l] = x_{l+1}
  std::vector<Matrix> crosses_;  // crosses_[l] = x_l W_l + b_l
  Matrix d_x_;                   // dL/dx_l while walking back; dL/dx_0 at the end
  Matrix d_cross_;
  Matrix d_input_direct_;  // the sum over layers of d_{l+1} * (x_l W_l + b_l)
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_CROSS_NETWORK_H_
