#include "worker/nn/retrieval_loss.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectGradientNear;
using gradient_check::RandomMatrix;

TEST(InBatchSoftmaxTest, MatchesHandComputedValueWithCorrection) {
  Matrix users(2, 2), items(2, 2);
  users << 1, 0, 0, 1;
  items << 1, 0, 0, 2;
  const std::vector<float> log_p = {std::log(0.5f), std::log(0.25f)};
  InBatchSoftmaxOptions options;
  options.temperature = 0.5f;
  options.log_sampling_probabilities = log_p;
  InBatchSoftmax softmax;
  Matrix d_users, d_items;
  const LossValue loss = softmax.Compute(users, items, options, {}, &d_users, &d_items);
  // Logits: [[2, 0], [0, 4]] minus log p per column.
  const double l00 = 2 - std::log(0.5), l01 = 0 - std::log(0.25);
  const double l10 = 0 - std::log(0.5), l11 = 4 - std::log(0.25);
  const double row0 = std::log(std::exp(l00) + std::exp(l01)) - l00;
  const double row1 = std::log(std::exp(l10) + std::exp(l11)) - l11;
  EXPECT_EQ(loss.count, 2);
  EXPECT_NEAR(loss.mean(), (row0 + row1) / 2, 1e-5);
  EXPECT_NEAR(softmax.logits()(0, 1), l01, 1e-5);
}

TEST(InBatchSoftmaxTest, AccidentalHitsAreNotNegatives) {
  std::mt19937 rng(43);
  const Matrix users = RandomMatrix(&rng, 3, 4);
  Matrix items = RandomMatrix(&rng, 3, 4);
  items.row(2) = items.row(0);
  const std::vector<uint64_t> keys = {7, 8, 7};
  InBatchSoftmaxOptions options;
  options.item_keys = keys;
  InBatchSoftmax softmax;
  Matrix d_users, d_items;
  softmax.Compute(users, items, options, {}, &d_users, &d_items);
  EXPECT_TRUE(std::isinf(softmax.logits()(0, 2)));
  EXPECT_TRUE(std::isinf(softmax.logits()(2, 0)));
  EXPECT_FALSE(std::isinf(softmax.logits()(0, 1)));
  EXPECT_TRUE(d_users.allFinite());
  EXPECT_TRUE(d_items.allFinite());
}

TEST(InBatchSoftmaxTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(47);
  Matrix users = RandomMatrix(&rng, 5, 3);
  Matrix items = RandomMatrix(&rng, 5, 3);
  const std::vector<float> log_p = {-1.0f, -3.0f, -0.5f, -2.0f, -1.5f};
  const std::vector<uint64_t> keys = {1, 2, 3, 1, 5};
  const std::vector<float> weights = {1.0f, 2.0f, 0.5f, 1.5f, 1.0f};
  const std::vector<uint8_t> has_label = {1, 1, 0, 1, 1};
  const SampleWeighting weighting{weights, has_label};
  InBatchSoftmaxOptions options;
  options.temperature = 0.7f;
  options.log_sampling_probabilities = log_p;
  options.item_keys = keys;
  InBatchSoftmax softmax;
  Matrix d_users, d_items;
  softmax.Compute(users, items, options, weighting, &d_users, &d_items);
  // The unlabelled sample 2 still serves as a negative, so its item gets gradient.
  EXPECT_FALSE(d_items.row(2).isZero());
  Matrix scratch_users, scratch_items;
  auto loss = [&] {
    return softmax.Compute(users, items, options, weighting, &scratch_users, &scratch_items).mean();
  };
  const Matrix analytic_users = d_users, analytic_items = d_items;
  ExpectGradientNear("users", &users, analytic_users, loss);
  ExpectGradientNear("items", &items, analytic_items, loss);
}

TEST(SampledPairLogisticTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(53);
  Matrix users = RandomMatrix(&rng, 3, 4);
  Matrix items = RandomMatrix(&rng, 4, 4);
  const std::vector<ScoredPair> pairs = {{0, 0, 1}, {0, 2, 0}, {1, 1, 1}, {1, 3, 0}, {2, 2, 1}};
  Matrix d_users, d_items;
  const LossValue value = SampledPairLogistic(users, items, pairs, 0.5f, &d_users, &d_items);
  EXPECT_EQ(value.count, 5);
  Matrix scratch_users, scratch_items;
  auto loss = [&] {
    return SampledPairLogistic(users, items, pairs, 0.5f, &scratch_users, &scratch_items).mean();
  };
  const Matrix analytic_users = d_users, analytic_items = d_items;
  ExpectGradientNear("users", &users, analytic_users, loss);
  ExpectGradientNear("items", &items, analytic_items, loss);
}

TEST(SampledPairLogisticTest, MatchesHandComputedValue) {
  Matrix users(1, 2), items(2, 2);
  users << 1, 1;
  items << 1, 0, 0, -1;
  const std::vector<ScoredPair> pairs = {{0, 0, 1}, {0, 1, 0}};
  Matrix d_users, d_items;
  const LossValue loss = SampledPairLogistic(users, items, pairs, 1.0f, &d_users, &d_items);
  // Logits 1 (label 1) and -1 (label 0): each loss log(1 + e^-1).
  EXPECT_NEAR(loss.mean(), std::log1p(std::exp(-1.0)), 1e-6);
}

TEST(SquaredDistanceToTargetTest, GradientOnlyReachesTheVectors) {
  std::mt19937 rng(59);
  Matrix vectors = RandomMatrix(&rng, 4, 3);
  const Matrix targets = RandomMatrix(&rng, 4, 3);
  const std::vector<uint8_t> positives = {1, 0, 1, 1};
  const std::vector<float> weights = {1.0f, 1.0f, 2.0f, 0.5f};
  const SampleWeighting weighting{weights, positives};
  Matrix d_vectors;
  const LossValue value = SquaredDistanceToTarget(vectors, targets, weighting, &d_vectors);
  EXPECT_EQ(value.count, 3);
  const double expected = (vectors.row(0) - targets.row(0)).squaredNorm() +
                          2 * (vectors.row(2) - targets.row(2)).squaredNorm() +
                          0.5 * (vectors.row(3) - targets.row(3)).squaredNorm();
  EXPECT_NEAR(value.total, expected, 1e-5);
  EXPECT_TRUE(d_vectors.row(1).isZero());
  Matrix scratch;
  ExpectGradientNear("vectors", &vectors, d_vectors, [&] {
    return SquaredDistanceToTarget(vectors, targets, weighting, &scratch).mean();
  });
  // The stop-gradient: a tower that produced the targets gets no gradient from this loss
  // because the API has no output for it; the loss still depends on them.
  Matrix moved = targets;
  moved(0, 0) += 1.0f;
  EXPECT_NE(SquaredDistanceToTarget(vectors, moved, weighting, &scratch).total, value.total);
}

TEST(CategoryAlignmentTest, MatchesHandComputedValue) {
  // Category 0 (major, 3 rows) has covariance [[1, 0], [0, 0]]; category 1 (2 rows) has
  // covariance [[0, 0], [0, 2]]; category 2 has one row and no covariance.
  Matrix items(6, 2);
  items << -1, 5, 0, 5, 1, 5, 3, -1, 3, 1, 9, 9;
  const std::vector<int32_t> categories = {0, 0, 0, 1, 1, 2};
  CategoryAlignment alignment;
  Matrix d_items;
  const LossValue loss = alignment.Compute(items, categories, &d_items);
  EXPECT_EQ(loss.count, 1);
  EXPECT_NEAR(loss.total, 1.0 + 4.0, 1e-5);
  EXPECT_TRUE(d_items.row(5).isZero());
}

TEST(CategoryAlignmentTest, NothingToAlignWithOneCategory) {
  Matrix items(3, 2);
  items << 1, 2, 3, 4, 5, 7;
  const std::vector<int32_t> categories = {4, 4, CategoryAlignment::kNoCategory};
  CategoryAlignment alignment;
  Matrix d_items;
  const LossValue loss = alignment.Compute(items, categories, &d_items);
  EXPECT_EQ(loss.count, 0);
  EXPECT_TRUE(d_items.isZero());
}

TEST(CategoryAlignmentTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(61);
  Matrix items = RandomMatrix(&rng, 9, 3);
  const std::vector<int32_t> categories = {2, 0, 2, 1, 2, 0, CategoryAlignment::kNoCategory, 1, 2};
  CategoryAlignment alignment;
  Matrix d_items;
  alignment.Compute(items, categories, &d_items);
  const Matrix analytic = d_items;
  Matrix scratch;
  ExpectGradientNear("items", &items, analytic,
                     [&] { return alignment.Compute(items, categories, &scratch).mean(); });
}

}  // namespace
}  // namespace nn
}  // namespace granary
