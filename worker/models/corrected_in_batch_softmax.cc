#include "worker/models/corrected_in_batch_softmax.h"

namespace granary {

CorrectedInBatchSoftmax::CorrectedInBatchSoftmax(
    float temperature, std::optional<FrequencyEstimatorOptions> correction)
    : temperature_(temperature) {
  if (correction.has_value()) {
    estimator_ = std::make_unique<StreamingFrequencyEstimator>(*correction);
  }
}

nn::LossValue CorrectedInBatchSoftmax::Compute(const nn::Matrix& users, const nn::Matrix& items,
                                               absl::Span<const uint64_t> item_keys,
                                               nn::Matrix* d_users, nn::Matrix* d_items) {
  nn::InBatchSoftmaxOptions options;
  options.temperature = temperature_;
  options.item_keys = item_keys;
  if (estimator_ != nullptr) {
    estimator_->Update(item_keys);
    log_probabilities_.resize(item_keys.size());
    estimator_->LogProbabilities(item_keys, absl::MakeSpan(log_probabilities_));
    options.log_sampling_probabilities = log_probabilities_;
  }
  return softmax_.Compute(users, items, options, {}, d_users, d_items);
}

}  // namespace granary
