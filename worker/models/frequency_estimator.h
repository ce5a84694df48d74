// StreamingFrequencyEstimator: the streaming item-frequency estimate of Yi et al., RecSys 2019
// ("Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations",
// Algorithm 2), which gives the in-batch softmax its sampling-bias correction
// logit - log(p_j) (see retrieval_loss.h).
//
// Two arrays of num_buckets entries, indexed by a hash of the item key: A holds the step at
// which an item was last seen, B a moving average of the number of steps between two
// sightings. On each training step t, for every item y of the batch, in order:
//   B[h(y)] <- (1 - alpha) * B[h(y)] + alpha * (t - A[h(y)])
//   A[h(y)] <- t
// and the item's probability of appearing in a batch is estimated as p = 1 / B[h(y)].
// An item seen k times in one batch contributes k - 1 intervals of 0, so B tends to
// 1 / (expected occurrences per batch) and p to that expectation, which may exceed 1.
//
// Departures from the paper, for a well-defined start: a bucket never seen has no estimate,
// and its first sighting at step t sets B = t + 1 (one sighting in the t + 1 steps so far)
// rather than averaging an interval from an arbitrary A = 0. B is floored at kMinInterval,
// so p stays finite. Items whose keys share a bucket share an estimate (the paper's
// collision trade-off: memory is bounded whatever the corpus size).
//
// Each worker (each model replica) keeps its own estimator over the batches it trains on;
// with data-parallel workers that see equally distributed shares, their estimates agree up to
// noise. The estimate is not checkpointed: after a restart it warms up again.
//
// Not thread-safe: one thread at a time.
#ifndef GRANARY_WORKER_MODELS_FREQUENCY_ESTIMATOR_H_
#define GRANARY_WORKER_MODELS_FREQUENCY_ESTIMATOR_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace granary {

struct FrequencyEstimatorOptions {
  // H, the size of A and B (16 bytes per bucket). Larger means fewer collisions.
  int num_buckets = 1 << 20;
  // alpha, the weight of the newest interval in B's moving average, in (0, 1].
  double learning_rate = 0.01;
};

class StreamingFrequencyEstimator {
 public:
  static constexpr double kMinInterval = 1e-3;

  // REQUIRES: options.num_buckets > 0; 0 < options.learning_rate <= 1.
  explicit StreamingFrequencyEstimator(const FrequencyEstimatorOptions& options);
  StreamingFrequencyEstimator(const StreamingFrequencyEstimator&) = delete;
  StreamingFrequencyEstimator& operator=(const StreamingFrequencyEstimator&) = delete;

  // Records one training step's items (duplicates included, in batch order) and advances the
  // step.
  void Update(absl::Span<const uint64_t> item_keys);

  // The estimated probability that `item_key` appears in a batch: 1 / B. An item never seen
  // gets 1 / (steps so far + 1), as if it were about to be seen for the first time.
  double Probability(uint64_t item_key) const;

  // Writes log(Probability(key)) of each key into log_probabilities (same size).
  void LogProbabilities(absl::Span<const uint64_t> item_keys,
                        absl::Span<float> log_probabilities) const;

  // Steps recorded so far.
  int64_t step() const { return step_; }

 private:
  size_t BucketOf(uint64_t key) const;

  const double learning_rate_;
  std::vector<int64_t> last_step_;  // A; kNeverSeen for a bucket never seen
  std::vector<double> interval_;    // B
  int64_t step_ = 0;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_FREQUENCY_ESTIMATOR_H_
