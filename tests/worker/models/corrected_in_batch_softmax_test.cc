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

TEST(CorrectedInBatchSoftmaxTest, OnPositivesIsTheLossOfThePositiveRowsWeighted) {
  // Rows 0, 2 and 4 of five are the positive pairs of Vectors; rows 1 and 3 are negatives with
  // other items, which take no part.
  nn::Matrix users(5, 2), items(5, 2);
  const nn::Matrix positive_users = Vectors(0), positive_items = Vectors(0.3f);
  for (int i = 0; i < 3; ++i) {
    users.row(2 * i) = positive_users.row(i);
    items.row(2 * i) = positive_items.row(i);
  }
  users.row(1) << 9, 9;
  users.row(3) << -9, 1;
  items.row(1) << 3, -3;
  items.row(3) << 1, 1;
  const std::vector<uint8_t> positive = {1, 0, 1, 0, 1};
  const std::vector<uint64_t> item_keys = {5, 11, 7, 12, 5};
  CorrectedInBatchSoftmax softmax(kTemperature, std::nullopt);
  nn::Matrix d_users, d_items, want_users, want_items;
  const nn::LossValue loss =
      softmax.ComputeOnPositives(users, items, positive, item_keys, 2.0f, &d_users, &d_items);
  EXPECT_DOUBLE_EQ(loss.total, ReferenceLoss({}, &want_users, &want_items));
  EXPECT_EQ(loss.count, 3);
  ASSERT_EQ(d_users.rows(), 5);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(d_users.row(2 * i).isApprox(2.0f * want_users.row(i))) << i;
    EXPECT_TRUE(d_items.row(2 * i).isApprox(2.0f * want_items.row(i))) << i;
  }
  for (int b : {1, 3}) {
    EXPECT_TRUE(d_users.row(b).isZero()) << b;
    EXPECT_TRUE(d_items.row(b).isZero()) << b;
  }
}

}  // namespace
}  // namespace granary
