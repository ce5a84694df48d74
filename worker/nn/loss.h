// Losses of the task heads, each from raw logits or scores: the loss over a batch and its
// gradient w.r.t. those logits, ready for the head's Backward.
//
// Every loss is a weighted mean: total = sum of weight * per-term loss over the terms that
// count, count = the number of those terms, and the reported loss is total / count. A term
// is a labelled sample (pairwise: a pair of labelled samples). A sample whose has_label is 0
// (its task has no label in this example) contributes nothing to the total, the count or the
// gradient; its weight scales its term but does not enter the denominator, so weights are
// importance weights rather than a renormalization. A batch with no terms has loss 0 and
// zero gradient. The gradient written is that of total / count.
//
// REQUIRES for every loss: labels (targets, group ids) have one entry per logits row, and
// each SampleWeighting span is empty or has one entry per row; weights are >= 0.
//
// Returning total and count separately lets the trainer merge the losses of several batches
// or workers exactly.
//
// Thread-safe: pure functions of their arguments; concurrent calls must not share outputs.
// They allocate nothing unless the gradient matrix changes size.
#ifndef GRANARY_WORKER_NN_LOSS_H_
#define GRANARY_WORKER_NN_LOSS_H_

#include <cstdint>

#include "absl/types/span.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

// Per-sample weights and label presence. Empty spans mean "weight 1" and "every sample has a
// label"; otherwise each has one entry per sample.
struct SampleWeighting {
  absl::Span<const float> weights;
  absl::Span<const uint8_t> has_label;  // 0: no label for this task, skip the sample

  bool HasLabel(int64_t i) const { return has_label.empty() || has_label[i] != 0; }
  float WeightOf(int64_t i) const { return weights.empty() ? 1.0f : weights[i]; }
  // The number of labelled samples among the first `batch`.
  int64_t CountLabelled(int64_t batch) const {
    if (has_label.empty()) return batch;
    int64_t count = 0;
    for (uint8_t present : has_label) count += present != 0;
    return count;
  }
};

// log(1 + exp(x)) without overflow for large x or lost precision for very negative x, and the
// logistic function 1 / (1 + exp(-x)) without overflow either way: the terms of every
// sigmoid cross-entropy.
double Softplus(double x);
double Sigmoid(double x);

struct LossValue {
  double total = 0.0;  // sum over the counted terms of weight * loss
  int64_t count = 0;   // counted terms: labelled samples, or pairs for PairwiseLogistic
  double mean() const { return count > 0 ? total / static_cast<double>(count) : 0.0; }
};

// Binary cross-entropy from logits [B, 1] against labels in [0, 1] (soft labels allowed):
// max(x, 0) - x * y + log(1 + exp(-|x|)), which neither overflows nor loses precision for
// large |x|. With per-sample weights this is also the weighted pointwise logistic loss for
// learning to rank. Writes d_logits [B, 1] = weight * (sigmoid(x) - y) / count.
LossValue SigmoidBinaryCrossEntropy(const Matrix& logits, absl::Span<const float> labels,
                                    const SampleWeighting& weighting, Matrix* d_logits);

// Softmax cross-entropy over K classes from logits [B, K] against class ids in [0, K):
// logsumexp(x) - x[label]. Writes d_logits [B, K] = weight * (softmax(x) - onehot) / count.
LossValue SoftmaxCrossEntropy(const Matrix& logits, absl::Span<const int32_t> labels,
                              const SampleWeighting& weighting, Matrix* d_logits);

// Squared error (p - y)^2 of predictions [B, 1] against targets. Writes d_predictions
// [B, 1] = weight * 2 (p - y) / count.
LossValue MeanSquaredError(const Matrix& predictions, absl::Span<const float> targets,
                           const SampleWeighting& weighting, Matrix* d_predictions);

// Pairwise logistic (RankNet) loss for learning to rank, over scores [B, 1]. A group (the
// items of one query or page view) is a maximal run of consecutive samples with the same
// group id, so a batch must keep each group's samples together. Within a group, every pair
// of labelled samples (i, j) with labels[i] > labels[j] is a term with loss
// weights[i] * log(1 + exp(-(s_i - s_j))): the weight of the preferred item, so that e.g. a
// purchase outranking a skip counts more than a click does. Pairs with equal labels are not
// terms. Writes d_scores [B, 1].
LossValue PairwiseLogistic(const Matrix& scores, absl::Span<const float> labels,
                           absl::Span<const int64_t> group_ids, const SampleWeighting& weighting,
                           Matrix* d_scores);

// The logit of the product of two probabilities, log(p / (1 - p)) for p = sigmoid(a) *
// sigmoid(b), without overflow or lost precision for large |a| or |b|.
double ProductLogit(double a, double b);

// Binary cross-entropy of the product p = sigmoid(a) * sigmoid(b) of two probabilities given
// by their logits a, b [B, 1] each (ESMM's pCTCVR = pCTR * pCVR), against labels in [0, 1]:
// -y log p - (1 - y) log(1 - p), computed in log space. Writes d_a and d_b [B, 1], the
// gradients of total / count w.r.t. a and b; each is bounded by weight / count in magnitude
// however close p is to 0 or 1.
LossValue ProductSigmoidBinaryCrossEntropy(const Matrix& logits_a, const Matrix& logits_b,
                                           absl::Span<const float> labels,
                                           const SampleWeighting& weighting, Matrix* d_a,
                                           Matrix* d_b);

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_LOSS_H_
