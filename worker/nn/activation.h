// Activation: an elementwise nonlinearity (ReLU, sigmoid or tanh) over a [B, d] batch.
//
// Backward needs only the output (each derivative is a function of it), so the layer keeps
// no pointer to its input.
//
// Not thread-safe: the layer keeps its output and scratch buffers; one thread at a time.
#ifndef GRANARY_WORKER_NN_ACTIVATION_H_
#define GRANARY_WORKER_NN_ACTIVATION_H_

#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

enum class ActivationKind {
  kRelu,     // max(x, 0); the derivative at 0 is taken as 0
  kSigmoid,  // 1 / (1 + exp(-x))
  kTanh,
};

class Activation {
 public:
  explicit Activation(ActivationKind kind) : kind_(kind) {}
  Activation(const Activation&) = delete;
  Activation& operator=(const Activation&) = delete;

  // Returns f(input), the same shape as input, valid until the next Forward.
  const Matrix& Forward(const Matrix& input);

  // Given d_output for the last Forward's batch, returns d_input, valid until the next
  // Backward.
  const Matrix& Backward(const Matrix& d_output);

  ActivationKind kind() const { return kind_; }

 private:
  const ActivationKind kind_;
  Matrix output_;
  Matrix d_input_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_ACTIVATION_H_
