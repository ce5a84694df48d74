// CorrectedInBatchSoftmax: the in-batch softmax loss of a retrieval model over its positive
// (user, item) pairs, with the sampling-bias correction logit - log p_j of a streaming item
// frequency estimate (Yi et al. 2019; frequency_estimator.h) when the config asks for it. One
// home for the loss options, the estimator's update and the loss, which two_tower (with loss
// IN_BATCH_SOFTMAX) and mind both train with.
//
// Not thread-safe: it holds the estimator and scratch of one model replica.
#ifndef GRANARY_WORKER_MODELS_CORRECTED_IN_BATCH_SOFTMAX_H_
#define GRANARY_WORKER_MODELS_CORRECTED_IN_BATCH_SOFTMAX_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "worker/models/frequency_estimator.h"
#include "worker/nn/loss.h"
#include "worker/nn/retrieval_loss.h"
#include "worker/nn/tensor.h"

namespace granary {

// The estimator options of a config with sampling_bias_correction, frequency_buckets and
// frequency_learning_rate (TwoTowerConfig, MindConfig), or nullopt when the correction is off.
template <typename Config>
std::optional<FrequencyEstimatorOptions> SamplingBiasCorrection(const Config& config) {
  if (!config.sampling_bias_correction()) return std::nullopt;
  FrequencyEstimatorOptions options;
  options.num_buckets = static_cast<int>(config.frequency_buckets());
  options.learning_rate = config.frequency_learning_rate();
  return options;
}

class CorrectedInBatchSoftmax {
 public:
  // `correction`: the estimator's options, or nullopt for the uncorrected softmax.
  // REQUIRES: temperature > 0.
  CorrectedInBatchSoftmax(float temperature, std::optional<FrequencyEstimatorOptions> correction);
  CorrectedInBatchSoftmax(const CorrectedInBatchSoftmax&) = delete;
  CorrectedInBatchSoftmax& operator=(const CorrectedInBatchSoftmax&) = delete;

  // Row i of users [P, d] and of items [P, d] are a positive pair of item item_keys[i]; every
  // other row's item is a negative for user i (a row of the same item is left out, not a
  // negative). With the correction, first counts this step's items into the estimate. Writes
  // d_users and d_items ([P, d] each). REQUIRES: item_keys has P entries.
  nn::LossValue Compute(const nn::Matrix& users, const nn::Matrix& items,
                        absl::Span<const uint64_t> item_keys, nn::Matrix* d_users,
                        nn::Matrix* d_items);

  // Compute over the rows b of users and items [B, d] where positive[b] (item item_keys[b]);
  // writes d_users and d_items [B, d]: `weight` times the loss's gradients on those rows, zero
  // on the others. REQUIRES: positive and item_keys have B entries.
  nn::LossValue ComputeOnPositives(const nn::Matrix& users, const nn::Matrix& items,
                                   absl::Span<const uint8_t> positive,
                                   absl::Span<const uint64_t> item_keys, float weight,
                                   nn::Matrix* d_users, nn::Matrix* d_items);

 private:
  const float temperature_;
  std::unique_ptr<StreamingFrequencyEstimator> estimator_;  // null: no correction
  nn::InBatchSoftmax softmax_;
  std::vector<float> log_probabilities_;  // scratch, [P]
  // ComputeOnPositives scratch: the positive rows, their items and vectors, their gradients.
  std::vector<int32_t> positives_;
  std::vector<uint64_t> positive_items_;
  nn::Matrix positive_users_, positive_item_vectors_;
  nn::Matrix d_positive_users_, d_positive_items_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_CORRECTED_IN_BATCH_SOFTMAX_H_
