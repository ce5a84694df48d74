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

nn::LossValue CorrectedInBatchSoftmax::ComputeOnPositives(
    const nn::Matrix& users, const nn::Matrix& items, absl::Span<const uint8_t> positive,
    absl::Span<const uint64_t> item_keys, float weight, nn::Matrix* d_users, nn::Matrix* d_items) {
  const Eigen::Index n = users.rows();
  const Eigen::Index width = users.cols();
  positives_.clear();
  positive_items_.clear();
  for (Eigen::Index b = 0; b < n; ++b) {
    if (!positive[b]) continue;
    positives_.push_back(static_cast<int32_t>(b));
    positive_items_.push_back(item_keys[b]);
  }
  const Eigen::Index p = static_cast<Eigen::Index>(positives_.size());
  positive_users_.resize(p, width);
  positive_item_vectors_.resize(p, width);
  for (Eigen::Index i = 0; i < p; ++i) {
    positive_users_.row(i) = users.row(positives_[i]);
    positive_item_vectors_.row(i) = items.row(positives_[i]);
  }
  const nn::LossValue loss = Compute(positive_users_, positive_item_vectors_, positive_items_,
                                     &d_positive_users_, &d_positive_items_);
  d_users->setZero(n, width);
  d_items->setZero(n, width);
  for (Eigen::Index i = 0; i < p; ++i) {
    d_users->row(positives_[i]) = weight * d_positive_users_.row(i);
    d_items->row(positives_[i]) = weight * d_positive_items_.row(i);
  }
  return loss;
}

}  // namespace granary
