// L2Normalize: scales each row of a [B, d] batch to unit Euclidean length, as two-tower
// models do to their user and item vectors so that a dot product is a cosine similarity.
//
//   output_b = input_b / max(|input_b|, kMinNorm)
//
// The floor keeps an all-zero row (e.g. a tower whose ReLU output died) finite: it maps to
// zero and passes its gradient through scaled by 1 / kMinNorm instead of producing NaN.
//
// Not thread-safe: the layer keeps its output and scratch buffers; one thread at a time.
#ifndef GRANARY_WORKER_NN_L2_NORMALIZE_H_
#define GRANARY_WORKER_NN_L2_NORMALIZE_H_

#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class L2Normalize {
 public:
  static constexpr float kMinNorm = 1e-6f;

  L2Normalize() = default;
  L2Normalize(const L2Normalize&) = delete;
  L2Normalize& operator=(const L2Normalize&) = delete;

  // Returns the row-normalized input, the same shape, valid until the next Forward.
  const Matrix& Forward(const Matrix& input);

  // Given d_output for the last Forward's batch, returns d_input, valid until the next
  // Backward: (d_output - output * (output . d_output)) / norm per row.
  const Matrix& Backward(const Matrix& d_output);

 private:
  Matrix output_;
  Matrix norms_;  // [B, 1]: max(|input_b|, kMinNorm)
  Matrix d_input_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_L2_NORMALIZE_H_
