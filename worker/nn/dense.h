// Dense: a fully connected layer, output = input * weight + bias.
//
// Shapes: input [B, input_dim], weight [input_dim, output_dim], bias [1, output_dim],
// output [B, output_dim]. Forward is one GEMM; Backward is two (d_input and d_weight).
//
// Not thread-safe: the layer keeps its output and scratch buffers, so one thread uses it at a
// time; give each training thread its own model.
#ifndef GRANARY_WORKER_NN_DENSE_H_
#define GRANARY_WORKER_NN_DENSE_H_

#include "absl/strings/string_view.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class Dense {
 public:
  // Adds the blocks "<name>/weight" (Glorot uniform) and "<name>/bias" (zeros) to *params,
  // which must outlive the layer.
  Dense(ParameterSet* params, absl::string_view name, int input_dim, int output_dim);
  Dense(const Dense&) = delete;
  Dense& operator=(const Dense&) = delete;

  // Returns the [B, output_dim] output, valid until the next Forward. Keeps a pointer to
  // `input` for Backward. REQUIRES: input.cols() == input_dim(); `input` stays alive and
  // unchanged until Backward returns.
  const Matrix& Forward(const Matrix& input);

  // Given d_output [B, output_dim] for the last Forward's batch, adds the weight and bias
  // gradients into their blocks' grad and returns d_input [B, input_dim], valid until the
  // next Backward.
  const Matrix& Backward(const Matrix& d_output);

  int input_dim() const { return input_dim_; }
  int output_dim() const { return output_dim_; }

 private:
  const int input_dim_;
  const int output_dim_;
  ParamBlock* const weight_;
  ParamBlock* const bias_;
  const Matrix* input_ = nullptr;
  Matrix output_;
  Matrix d_input_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_DENSE_H_
