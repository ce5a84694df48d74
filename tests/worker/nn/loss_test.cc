#include "worker/nn/loss.h"

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

// Weights and a missing label on sample 2, used by every gradient check.
const std::vector<float> kWeights = {1.0f, 2.0f, 0.5f, 1.5f, 1.0f};
const std::vector<uint8_t> kHasLabel = {1, 1, 0, 1, 1};
const SampleWeighting kWeighting{kWeights, kHasLabel};

TEST(SigmoidBinaryCrossEntropyTest, MatchesHandComputedValue) {
  Matrix logits(2, 1);
  logits << 0.0f, 2.0f;
  const std::vector<float> labels = {1.0f, 0.0f};
  Matrix d_logits;
  const LossValue loss = SigmoidBinaryCrossEntropy(logits, labels, {}, &d_logits);
  EXPECT_EQ(loss.count, 2);
  const double expected = (std::log(2.0) + std::log(1.0 + std::exp(2.0))) / 2.0;
  EXPECT_NEAR(loss.mean(), expected, 1e-9);
  EXPECT_NEAR(d_logits(0, 0), (0.5 - 1.0) / 2.0, 1e-7);
  EXPECT_NEAR(d_logits(1, 0), 1.0 / (1.0 + std::exp(-2.0)) / 2.0, 1e-7);
}

TEST(SigmoidBinaryCrossEntropyTest, StableForLargeLogits) {
  Matrix logits(3, 1);
  logits << 100.0f, -100.0f, 100.0f;
  const std::vector<float> labels = {0.0f, 1.0f, 1.0f};
  Matrix d_logits;
  const LossValue loss = SigmoidBinaryCrossEntropy(logits, labels, {}, &d_logits);
  EXPECT_NEAR(loss.total, 200.0, 1e-9);
  EXPECT_NEAR(d_logits(0, 0), 1.0 / 3, 1e-7);
  EXPECT_NEAR(d_logits(1, 0), -1.0 / 3, 1e-7);
  EXPECT_NEAR(d_logits(2, 0), 0.0, 1e-7);
}

TEST(SigmoidBinaryCrossEntropyTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(23);
  Matrix logits = RandomMatrix(&rng, 5, 1, 3.0f);
  const std::vector<float> labels = {1.0f, 0.0f, 1.0f, 0.3f, 0.0f};
  Matrix d_logits;
  SigmoidBinaryCrossEntropy(logits, labels, kWeighting, &d_logits);
  Matrix scratch;
  ExpectGradientNear("logits", &logits, d_logits, [&] {
    return SigmoidBinaryCrossEntropy(logits, labels, kWeighting, &scratch).mean();
  });
}

TEST(SigmoidBinaryCrossEntropyTest, UnlabelledSamplesContributeNothing) {
  Matrix logits(5, 1);
  logits << 0.5f, -1.0f, 3.0f, 0.0f, 2.0f;
  const std::vector<float> labels = {1.0f, 0.0f, 1.0f, 1.0f, 0.0f};
  Matrix d_logits;
  const LossValue loss = SigmoidBinaryCrossEntropy(logits, labels, kWeighting, &d_logits);
  EXPECT_EQ(loss.count, 4);
  EXPECT_EQ(d_logits(2, 0), 0.0f);
  logits(2, 0) = -50.0f;
  const LossValue changed = SigmoidBinaryCrossEntropy(logits, labels, kWeighting, &d_logits);
  EXPECT_EQ(changed.total, loss.total);

  const std::vector<uint8_t> none(5, 0);
  const LossValue empty = SigmoidBinaryCrossEntropy(logits, labels, {{}, none}, &d_logits);
  EXPECT_EQ(empty.count, 0);
  EXPECT_EQ(empty.mean(), 0.0);
  EXPECT_TRUE(d_logits.isZero());
}

TEST(SoftmaxCrossEntropyTest, MatchesHandComputedValue) {
  Matrix logits(1, 3);
  logits << 1.0f, 2.0f, 3.0f;
  const std::vector<int32_t> labels = {0};
  Matrix d_logits;
  const LossValue loss = SoftmaxCrossEntropy(logits, labels, {}, &d_logits);
  const double normalizer = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(loss.mean(), std::log(normalizer) - 1.0, 1e-6);
  EXPECT_NEAR(d_logits(0, 0), std::exp(1.0) / normalizer - 1.0, 1e-6);
  EXPECT_NEAR(d_logits(0, 2), std::exp(3.0) / normalizer, 1e-6);
}

TEST(SoftmaxCrossEntropyTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(29);
  Matrix logits = RandomMatrix(&rng, 5, 4, 3.0f);
  const std::vector<int32_t> labels = {0, 3, 1, 2, 3};
  Matrix d_logits;
  SoftmaxCrossEntropy(logits, labels, kWeighting, &d_logits);
  EXPECT_TRUE(d_logits.row(2).isZero());
  Matrix scratch;
  ExpectGradientNear("logits", &logits, d_logits, [&] {
    return SoftmaxCrossEntropy(logits, labels, kWeighting, &scratch).mean();
  });
}

TEST(MeanSquaredErrorTest, MatchesHandComputedValueAndGradient) {
  Matrix predictions(2, 1);
  predictions << 1.0f, 4.0f;
  const std::vector<float> targets = {2.0f, 2.0f};
  const std::vector<float> weights = {1.0f, 3.0f};
  Matrix d_predictions;
  const LossValue loss = MeanSquaredError(predictions, targets, {weights, {}}, &d_predictions);
  EXPECT_NEAR(loss.mean(), (1.0 + 3.0 * 4.0) / 2.0, 1e-9);
  EXPECT_NEAR(d_predictions(0, 0), 2.0 * -1.0 / 2.0, 1e-7);
  EXPECT_NEAR(d_predictions(1, 0), 2.0 * 3.0 * 2.0 / 2.0, 1e-7);

  std::mt19937 rng(31);
  Matrix random_predictions = RandomMatrix(&rng, 5, 1);
  const std::vector<float> random_targets = {0.5f, -1.0f, 0.0f, 2.0f, 1.0f};
  MeanSquaredError(random_predictions, random_targets, kWeighting, &d_predictions);
  Matrix scratch;
  ExpectGradientNear("predictions", &random_predictions, d_predictions, [&] {
    return MeanSquaredError(random_predictions, random_targets, kWeighting, &scratch).mean();
  });
}

TEST(PairwiseLogisticTest, EnumeratesOrderedPairsWithinGroups) {
  Matrix scores = Matrix::Zero(7, 1);
  // Group 1: labels 2, 1, 1, 0 -> pairs (0,1) (0,2) (0,3) (1,3) (2,3); the tie 1-2 is no pair.
  // Group 2: one sample, no pair. Group 1 again after group 2 is a new group: labels 1, 0,
  // but the second is unlabelled -> no pair.
  const std::vector<float> labels = {2, 1, 1, 0, 5, 1, 0};
  const std::vector<int64_t> groups = {1, 1, 1, 1, 2, 1, 1};
  const std::vector<uint8_t> has_label = {1, 1, 1, 1, 1, 1, 0};
  Matrix d_scores;
  const LossValue loss = PairwiseLogistic(scores, labels, groups, {{}, has_label}, &d_scores);
  EXPECT_EQ(loss.count, 5);
  // Every score is 0, so every pair's loss is log 2 and its margin gradient -1/2.
  EXPECT_NEAR(loss.total, 5 * std::log(2.0), 1e-9);
  // Sample 0 wins 3 pairs, sample 3 loses 3; samples 1 and 2 win one and lose one.
  EXPECT_NEAR(d_scores(0, 0), -1.5 / 5, 1e-7);
  EXPECT_NEAR(d_scores(1, 0), 0.0, 1e-7);
  EXPECT_NEAR(d_scores(3, 0), 1.5 / 5, 1e-7);
  EXPECT_TRUE(d_scores.bottomRows(3).isZero());
}

TEST(PairwiseLogisticTest, PairWeightIsThePreferredSamplesWeight) {
  Matrix scores(2, 1);
  scores << 1.0f, 3.0f;
  const std::vector<float> labels = {0, 1};
  const std::vector<int64_t> groups = {7, 7};
  const std::vector<float> weights = {10.0f, 2.0f};
  Matrix d_scores;
  const LossValue loss = PairwiseLogistic(scores, labels, groups, {weights, {}}, &d_scores);
  EXPECT_EQ(loss.count, 1);
  EXPECT_NEAR(loss.total, 2.0 * std::log1p(std::exp(-2.0)), 1e-7);
}

TEST(PairwiseLogisticTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(37);
  Matrix scores = RandomMatrix(&rng, 5, 1, 2.0f);
  const std::vector<float> labels = {1, 0, 2, 1, 0};
  const std::vector<int64_t> groups = {4, 4, 4, 9, 9};
  Matrix d_scores;
  PairwiseLogistic(scores, labels, groups, kWeighting, &d_scores);
  Matrix scratch;
  ExpectGradientNear("scores", &scores, d_scores, [&] {
    return PairwiseLogistic(scores, labels, groups, kWeighting, &scratch).mean();
  });
}

TEST(ProductSigmoidBinaryCrossEntropyTest, MatchesTheCrossEntropyOfTheProduct) {
  Matrix a(3, 1), b(3, 1);
  a << 0.5f, -1.0f, 2.0f;
  b << -0.25f, 1.5f, 0.0f;
  const std::vector<float> labels = {1.0f, 0.0f, 0.3f};
  Matrix d_a, d_b;
  const LossValue loss = ProductSigmoidBinaryCrossEntropy(a, b, labels, {}, &d_a, &d_b);
  EXPECT_EQ(loss.count, 3);
  double expected = 0;
  for (int i = 0; i < 3; ++i) {
    const double p = Sigmoid(a(i, 0)) * Sigmoid(b(i, 0));
    expected -= labels[i] * std::log(p) + (1 - labels[i]) * std::log(1 - p);
    EXPECT_NEAR(ProductLogit(a(i, 0), b(i, 0)), std::log(p / (1 - p)), 1e-9) << i;
  }
  EXPECT_NEAR(loss.total, expected, 1e-9);
}

TEST(ProductSigmoidBinaryCrossEntropyTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(29);
  Matrix a = RandomMatrix(&rng, 5, 1, 3.0f);
  Matrix b = RandomMatrix(&rng, 5, 1, 3.0f);
  const std::vector<float> labels = {1.0f, 0.0f, 1.0f, 0.3f, 0.0f};
  Matrix d_a, d_b;
  ProductSigmoidBinaryCrossEntropy(a, b, labels, kWeighting, &d_a, &d_b);
  EXPECT_EQ(d_a(2, 0), 0.0f);  // unlabelled
  EXPECT_EQ(d_b(2, 0), 0.0f);
  Matrix scratch_a, scratch_b;
  auto loss = [&] {
    return ProductSigmoidBinaryCrossEntropy(a, b, labels, kWeighting, &scratch_a, &scratch_b)
        .mean();
  };
  ExpectGradientNear("logits a", &a, d_a, loss);
  ExpectGradientNear("logits b", &b, d_b, loss);
}

TEST(ProductSigmoidBinaryCrossEntropyTest, StableForLargeLogits) {
  Matrix a(4, 1), b(4, 1);
  a << 100.0f, -100.0f, 100.0f, 40.0f;
  b << 100.0f, -100.0f, -100.0f, 40.0f;
  const std::vector<float> labels = {0.0f, 1.0f, 1.0f, 0.0f};
  Matrix d_a, d_b;
  const LossValue loss = ProductSigmoidBinaryCrossEntropy(a, b, labels, {}, &d_a, &d_b);
  ASSERT_TRUE(std::isfinite(loss.total));
  // Sample 0 (p = 1 - ~2e-100, labelled 0) alone costs ~100 - log 2, not inf.
  EXPECT_GT(loss.total, 150.0);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::isfinite(d_a(i, 0)) && std::isfinite(d_b(i, 0))) << i;
    EXPECT_LE(std::abs(d_a(i, 0)), 0.25f + 1e-6f) << i;  // at most weight / count
    EXPECT_LE(std::abs(d_b(i, 0)), 0.25f + 1e-6f) << i;
  }
  EXPECT_TRUE(std::isfinite(ProductLogit(100, 100)));
  EXPECT_NEAR(ProductLogit(-100, 3), -100 + std::log(Sigmoid(3)), 1e-6);
}

}  // namespace
}  // namespace nn
}  // namespace granary
