#include "worker/models/corrected_in_batch_softmax.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr float kTemperature = 0.5f;

// Three positive pairs; items 5 and 7 twice and once: 5 is the popular one.
const std::vector<uint64_t> kItems = {5, 7, 5};

nn::Matrix Vectors(float offset) {
  nn::Matrix m(3, 2);
  m << 0.1f + offset, -0.4f, 0.7f, 0.2f + offset, -0.3f, 0.5f;
  return m;
}

// The loss of nn::InBatchSoftmax with `log_probabilities` (empty: none) on the vectors.
double ReferenceLoss(const std::vector<float>& log_probabilities, nn::Matrix* d_users,
                     nn::Matrix* d_items) {
  nn::InBatchSoftmax softmax;
  nn::InBatchSoftmaxOptions options;
  options.temperature = kTemperature;
  options.item_keys = kItems;
  options.log_sampling_probabilities = log_probabilities;
  return softmax.Compute(Vectors(0), Vectors(0.3f), options, {}, d_users, d_items).total;
}

TEST(CorrectedInBatchSoftmaxTest, WithoutCorrectionIsTheInBatchSoftmax) {
  CorrectedInBatchSoftmax softmax(kTemperature, std::nullopt);
  nn::Matrix d_users, d_items, want_users, want_items;
  for (int step = 0; step < 2; ++step) {
    const nn::LossValue loss =
        softmax.Compute(Vectors(0), Vectors(0.3f), kItems, &d_users, &d_items);
    EXPECT_DOUBLE_EQ(loss.total, ReferenceLoss({}, &want_users, &want_items));
    EXPECT_TRUE(d_users.isApprox(want_users));
    EXPECT_TRUE(d_items.isApprox(want_items));
  }
}

TEST(CorrectedInBatchSoftmaxTest, CorrectsByTheEstimateIncludingThisStep) {
  FrequencyEstimatorOptions options;
  options.num_buckets = 64;
  options.learning_rate = 0.5;
  CorrectedInBatchSoftmax softmax(kTemperature, options);
  StreamingFrequencyEstimator reference(options);
  std::vector<float> log_probabilities(kItems.size());
  nn::Matrix d_users, d_items, want_users, want_items;
  for (int step = 0; step < 3; ++step) {
    const nn::LossValue loss =
        softmax.Compute(Vectors(0), Vectors(0.3f), kItems, &d_users, &d_items);
    reference.Update(kItems);
    reference.LogProbabilities(kItems, absl::MakeSpan(log_probabilities));
    EXPECT_NEAR(loss.total, ReferenceLoss(log_probabilities, &want_users, &want_items), 1e-6)
        << step;
    EXPECT_TRUE(d_users.isApprox(want_users)) << step;
    EXPECT_TRUE(d_items.isApprox(want_items)) << step;
    // The correction is applied: item 5, seen more often, is estimated likelier than item 7,
    // so the loss differs from the uncorrected one.
    EXPECT_GT(log_probabilities[0], log_probabilities[1]) << step;
    EXPECT_GT(std::abs(loss.total - ReferenceLoss({}, &want_users, &want_items)), 1e-4) << step;
  }
}

}  // namespace
}  // namespace granary
