// LabelAwareAttention: MIND's label-aware attention (Li et al., CIKM 2019, section 4.3, eq. 10):
// in training, the user's interests are mixed into one vector by their agreement with the
// target item, sharpened by a power p; serving scores an item by its best interest instead.
//
// Shapes: interests [B, K * dim], interest k of sample b in columns k * dim ..; counts B values
// in [0, K], the interests each sample has (later ones are ignored); target [B, dim]; user
// [B, dim]. For sample b:
//   x_k  = interest_k . target
//   a_k  = softmax over k < count of sign(x_k) |x_k|^p
//   user = sum_k a_k interest_k
// The paper writes pow(x_k, p); sign(x) |x|^p is the same for odd integers p, and for any p
// keeps the order of the x_k, so p -> infinity still tends to hard attention on the best
// interest (p = 0 would be plain averaging). A sample with count 0 gets a zero user vector.
// Parameters: none.
//
// Not thread-safe: the layer keeps its activations and scratch; one thread at a time.
#ifndef GRANARY_WORKER_NN_LABEL_AWARE_ATTENTION_H_
#define GRANARY_WORKER_NN_LABEL_AWARE_ATTENTION_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class LabelAwareAttention {
 public:
  // REQUIRES: num_interests, dim >= 1; power >= 1 (below 1 the power's slope is unbounded at 0).
  LabelAwareAttention(int num_interests, int dim, float power);
  LabelAwareAttention(const LabelAwareAttention&) = delete;
  LabelAwareAttention& operator=(const LabelAwareAttention&) = delete;

  // Returns user [B, dim], valid until the next Forward. Keeps pointers to `interests` and
  // `target` for Backward and copies `counts`. REQUIRES: shapes as above, B = counts.size() >= 1;
  // both inputs stay alive and unchanged until Backward returns.
  const Matrix& Forward(const Matrix& interests, absl::Span<const int32_t> counts,
                        const Matrix& target);
  // [B, K]: the attention weights a of the last Forward (0 beyond a sample's count).
  const Matrix& weights() const { return weights_; }

  // Given d_user [B, dim], computes d_interests() and d_target().
  void Backward(const Matrix& d_user);
  const Matrix& d_interests() const { return d_interests_; }  // [B, K * dim]
  const Matrix& d_target() const { return d_target_; }        // [B, dim]

 private:
  const int num_interests_;
  const int dim_;
  const float power_;

  const Matrix* interests_ = nullptr;
  const Matrix* target_ = nullptr;
  std::vector<int32_t> counts_;
  Matrix agreements_;  // [B, K]: x_k
  Matrix weights_;     // [B, K]: a_k
  Matrix user_;        // [B, dim]

  Matrix d_interests_;
  Matrix d_target_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_LABEL_AWARE_ATTENTION_H_
