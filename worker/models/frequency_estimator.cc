#include "worker/models/frequency_estimator.h"

#include <algorithm>
#include <cmath>

#include "absl/hash/hash.h"
#include "glog/logging.h"

namespace granary {
namespace {

constexpr int64_t kNeverSeen = -1;

}  // namespace

StreamingFrequencyEstimator::StreamingFrequencyEstimator(const FrequencyEstimatorOptions& options)
    : learning_rate_(options.learning_rate),
      last_step_(static_cast<size_t>(options.num_buckets), kNeverSeen),
      interval_(static_cast<size_t>(options.num_buckets), 0.0) {
  CHECK_GT(options.num_buckets, 0);
  CHECK(options.learning_rate > 0 && options.learning_rate <= 1) << options.learning_rate;
}

size_t StreamingFrequencyEstimator::BucketOf(uint64_t key) const {
  // Keys are already hashes of feature values, but hash again so that a key space with
  // structure in its low bits (e.g. raw integer ids in tests) still spreads evenly.
  return absl::HashOf(key) % last_step_.size();
}

void StreamingFrequencyEstimator::Update(absl::Span<const uint64_t> item_keys) {
  for (uint64_t key : item_keys) {
    const size_t bucket = BucketOf(key);
    if (last_step_[bucket] == kNeverSeen) {
      interval_[bucket] = static_cast<double>(step_ + 1);
    } else {
      const double gap = static_cast<double>(step_ - last_step_[bucket]);
      interval_[bucket] = (1.0 - learning_rate_) * interval_[bucket] + learning_rate_ * gap;
    }
    last_step_[bucket] = step_;
  }
  ++step_;
}

double StreamingFrequencyEstimator::Probability(uint64_t item_key) const {
  const size_t bucket = BucketOf(item_key);
  const double interval =
      last_step_[bucket] == kNeverSeen ? static_cast<double>(step_ + 1) : interval_[bucket];
  return 1.0 / std::max(interval, kMinInterval);
}

void StreamingFrequencyEstimator::LogProbabilities(absl::Span<const uint64_t> item_keys,
                                                   absl::Span<float> log_probabilities) const {
  DCHECK_EQ(item_keys.size(), log_probabilities.size());
  for (size_t i = 0; i < item_keys.size(); ++i) {
    log_probabilities[i] = static_cast<float>(std::log(Probability(item_keys[i])));
  }
}

}  // namespace granary
