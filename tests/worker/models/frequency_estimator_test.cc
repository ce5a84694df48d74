#include "worker/models/frequency_estimator.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

TEST(StreamingFrequencyEstimatorTest, UnseenItemGetsOneOverStepsPlusOne) {
  StreamingFrequencyEstimator estimator({1024, 0.1});
  EXPECT_DOUBLE_EQ(estimator.Probability(5), 1.0);
  const std::vector<uint64_t> batch = {1, 2};
  estimator.Update(batch);
  estimator.Update(batch);
  estimator.Update(batch);
  EXPECT_EQ(estimator.step(), 3);
  EXPECT_DOUBLE_EQ(estimator.Probability(5), 1.0 / 4);
}

TEST(StreamingFrequencyEstimatorTest, ConvergesToThePerBatchRate) {
  // Item 1 in every batch, item 2 in every 4th, item 3 twice in every batch.
  StreamingFrequencyEstimator estimator({1 << 12, 0.05});
  for (int step = 0; step < 2000; ++step) {
    std::vector<uint64_t> batch = {1, 3, 3};
    if (step % 4 == 0) batch.push_back(2);
    estimator.Update(batch);
  }
  EXPECT_NEAR(estimator.Probability(1), 1.0, 0.02);
  EXPECT_NEAR(estimator.Probability(2), 0.25, 0.01);
  EXPECT_NEAR(estimator.Probability(3), 2.0, 0.1);
}

TEST(StreamingFrequencyEstimatorTest, FollowsTheUpdateRuleOfAlgorithm2) {
  StreamingFrequencyEstimator estimator({64, 0.5});
  const std::vector<uint64_t> item = {9};
  const std::vector<uint64_t> none = {};
  estimator.Update(none);  // step 0
  estimator.Update(item);  // step 1: first sighting, B = 2
  EXPECT_DOUBLE_EQ(estimator.Probability(9), 0.5);
  estimator.Update(none);  // step 2
  estimator.Update(none);  // step 3
  estimator.Update(item);  // step 4: gap 3, B = 0.5 * 2 + 0.5 * 3 = 2.5
  EXPECT_DOUBLE_EQ(estimator.Probability(9), 1.0 / 2.5);
  std::vector<float> logs(1);
  estimator.LogProbabilities(item, absl::MakeSpan(logs));
  EXPECT_NEAR(logs[0], std::log(1.0 / 2.5), 1e-6);
}

}  // namespace
}  // namespace granary
