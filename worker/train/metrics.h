// Evaluation metrics over predictions the trainer collected, possibly from every worker: AUC,
// log loss, RMSE over (score, label) pairs and accuracy over class logits.
//
// A ScoredLabel list merges by concatenation, so the exact metric of the whole evaluation set
// is the metric of the concatenated lists (no approximation by histogram buckets). Each
// metric returns nullopt when it is undefined for its input (no examples; for AUC, no
// positive or no negative).
//
// Thread-safe: pure functions of their arguments.
#ifndef GRANARY_WORKER_TRAIN_METRICS_H_
#define GRANARY_WORKER_TRAIN_METRICS_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "worker/nn/tensor.h"

namespace granary {

struct ScoredLabel {
  float score;  // a logit or probability for AUC; a probability for LogLoss; a value for RMSE
  float label;  // AUC: >= 0.5 is a positive; LogLoss: in [0, 1]; RMSE: the target
};

// The area under the ROC curve: the probability that a random positive scores above a random
// negative, a tie counting one half. Exact, in O(n log n): sorts by score and sums the
// positives' mid-ranks (Mann-Whitney U). Takes the vector by value and sorts it in place;
// move it in to avoid the copy. REQUIRES: no NaN scores.
std::optional<double> Auc(std::vector<ScoredLabel> examples);

// The mean binary cross-entropy of probabilities against labels, each probability clamped to
// [kLogLossEpsilon, 1 - kLogLossEpsilon] so that one confident miss gives a large, finite
// loss.
inline constexpr double kLogLossEpsilon = 1e-7;
std::optional<double> LogLoss(absl::Span<const ScoredLabel> examples);

// The root mean squared error of scores against labels.
std::optional<double> Rmse(absl::Span<const ScoredLabel> examples);

// The fraction of rows of logits [B, K] whose largest logit (the first, on ties) is at the
// label's class. REQUIRES: labels.size() == B, each in [0, K).
std::optional<double> Accuracy(const nn::Matrix& logits, absl::Span<const int32_t> labels);

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_METRICS_H_
