// Losses of the two-tower retrieval family: user vectors and item vectors of a batch in,
// the loss and its gradients w.r.t. those vectors out, ready for the towers' Backward.
//
// The conventions of loss.h hold: a LossValue is a total and a count, the gradients written
// are those of total / count, SampleWeighting gives per-sample weights and label presence.
//
//   InBatchSoftmax          the sampled softmax over a batch's items, with temperature and
//                           the logQ sampling-bias correction of Yi et al., RecSys 2019
//   SampledPairLogistic     sigmoid cross-entropy over (user, item, label) pairs: the
//                           random-negative variant, and ATNN's CTR loss
//   SquaredDistanceToTarget |v - sg(t)|^2 with a stop-gradient on the target: DAT's
//                           Adaptive-Mimic Mechanism and ATNN's similarity loss
//   CategoryAlignment       DAT's Category Alignment Loss (covariance alignment)
//
// Thread-safety: the free functions are pure; the classes keep scratch buffers, so one thread
// uses an instance at a time.
#ifndef GRANARY_WORKER_NN_RETRIEVAL_LOSS_H_
#define GRANARY_WORKER_NN_RETRIEVAL_LOSS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "worker/nn/loss.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

struct InBatchSoftmaxOptions {
  // tau > 0: logits are similarities / tau. Small tau sharpens the softmax, as L2-normalized
  // vectors give similarities in [-1, 1] only.
  float temperature = 1.0f;
  // Empty, or [B]: log p_j, the log probability that row j's item is in a batch (from
  // StreamingFrequencyEstimator). When given, every logit of column j becomes
  // s_ij / tau - log p_j, so popular items, which appear as negatives more often than the
  // corpus softmax would weigh them, are discounted (Yi et al. 2019, eq. 3).
  absl::Span<const float> log_sampling_probabilities;
  // Empty, or [B]: the item key of each row. When given, column j != i whose item equals row
  // i's item is left out of row i's softmax: it is the same positive, not a negative (an
  // "accidental hit", frequent for popular items).
  absl::Span<const uint64_t> item_keys;
};

// Row i of users [B, d] and row i of items [B, d] are a positive pair; every other row's item
// is a negative for user i. Sample i's loss is the softmax cross-entropy of row i of the
// [B, B] logits against class i; weighting gives the reward r_i and label presence (an
// unlabelled sample adds no loss term, but its item remains a negative for the others).
class InBatchSoftmax {
 public:
  InBatchSoftmax() = default;
  InBatchSoftmax(const InBatchSoftmax&) = delete;
  InBatchSoftmax& operator=(const InBatchSoftmax&) = delete;

  // Writes d_users [B, d] and d_items [B, d]. REQUIRES: users and items have the same shape;
  // option and weighting spans are empty or have B entries; temperature > 0.
  LossValue Compute(const Matrix& users, const Matrix& items, const InBatchSoftmaxOptions& options,
                    const SampleWeighting& weighting, Matrix* d_users, Matrix* d_items);

  // [B, B]: the corrected logits of the last Compute (left-out entries hold -infinity).
  const Matrix& logits() const { return logits_; }

 private:
  Matrix logits_;
  Matrix d_logits_;
};

// A scored (user, item) pair for SampledPairLogistic.
struct ScoredPair {
  int32_t user_row;  // a row of users
  int32_t item_row;  // a row of items
  float label;       // 1 for the positive, 0 for a negative (soft labels allowed)
};

// Sigmoid cross-entropy of logit <users[u], items[v]> / temperature against each pair's
// label, averaged over the pairs (weights all 1). Writes d_users (users' shape) and d_items
// (items' shape); rows in no pair get zero. REQUIRES: users.cols() == items.cols(); every
// pair's rows are in range; temperature > 0.
LossValue SampledPairLogistic(const Matrix& users, const Matrix& items,
                              absl::Span<const ScoredPair> pairs, float temperature,
                              Matrix* d_users, Matrix* d_items);

// sum_k (vectors_bk - targets_bk)^2 per labelled sample, weighted, averaged over labelled
// samples. The targets are constants (a stop-gradient): only d_vectors is written, so the
// tower that produced the targets is not pulled towards the vectors.
//   DAT AMM: vectors = the augmented vectors a_u (a_v), targets = the other tower's output
//   p_v (p_u), has_label = 1 on positive samples only.
//   ATNN: vectors = the generator's item vectors, targets = the encoder's.
// REQUIRES: vectors and targets have the same shape; weighting as in loss.h.
LossValue SquaredDistanceToTarget(const Matrix& vectors, const Matrix& targets,
                                  const SampleWeighting& weighting, Matrix* d_vectors);

// DAT's Category Alignment Loss over the item vectors of a batch [B, d] and each row's
// category: with C(S) the covariance of a category's vectors (unbiased, 1 / (n - 1)) and
// "major" the category with the most rows in the batch (the smallest id on ties),
//   loss = sum over the other categories c of |C(major) - C(c)|_F^2
// Rows whose category is kNoCategory, and categories with fewer than 2 rows (no covariance),
// take no part. The LossValue has count 1 (one batch term) when any category was aligned,
// else 0 with zero gradient.
class CategoryAlignment {
 public:
  static constexpr int32_t kNoCategory = -1;

  CategoryAlignment() = default;
  CategoryAlignment(const CategoryAlignment&) = delete;
  CategoryAlignment& operator=(const CategoryAlignment&) = delete;

  // Writes d_items [B, d]. REQUIRES: categories.size() == items.rows().
  LossValue Compute(const Matrix& items, absl::Span<const int32_t> categories, Matrix* d_items);

 private:
  struct Group {
    int32_t category;
    std::vector<int32_t> rows;
    Matrix centered;    // [n, d]
    Matrix covariance;  // [d, d]
  };
  std::vector<Group> groups_;
  Matrix d_covariance_;
  Matrix d_centered_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_RETRIEVAL_LOSS_H_
