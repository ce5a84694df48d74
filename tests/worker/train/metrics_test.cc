#include "worker/train/metrics.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace granary {

using nn::Matrix;
namespace {

// The AUC by its definition: over every (positive, negative) pair, 1 if the positive scores
// higher, 1/2 on a tie.
double BruteForceAuc(const std::vector<ScoredLabel>& examples) {
  double wins = 0.0;
  int64_t pairs = 0;
  for (const ScoredLabel& positive : examples) {
    if (positive.label < 0.5f) continue;
    for (const ScoredLabel& negative : examples) {
      if (negative.label >= 0.5f) continue;
      ++pairs;
      if (positive.score > negative.score) wins += 1.0;
      if (positive.score == negative.score) wins += 0.5;
    }
  }
  return wins / static_cast<double>(pairs);
}

TEST(AucTest, HandComputedValues) {
  EXPECT_DOUBLE_EQ(*Auc({{0.1f, 0}, {0.2f, 0}, {0.8f, 1}, {0.9f, 1}}), 1.0);
  EXPECT_DOUBLE_EQ(*Auc({{0.1f, 1}, {0.2f, 1}, {0.8f, 0}, {0.9f, 0}}), 0.0);
  // Positives 0.4 and 0.8 against negatives 0.1 and 0.4: 1 + 1/2 + 1 + 1 of 4 pairs.
  EXPECT_DOUBLE_EQ(*Auc({{0.4f, 1}, {0.1f, 0}, {0.8f, 1}, {0.4f, 0}}), 0.875);
  // All scores tied: every pair is a tie.
  EXPECT_DOUBLE_EQ(*Auc({{0.3f, 1}, {0.3f, 0}, {0.3f, 0}, {0.3f, 1}, {0.3f, 1}}), 0.5);
  // Positive 0.5 against negatives 0.2, 0.5, 0.5, 0.7: (1 + 0.5 + 0.5 + 0) / 4.
  EXPECT_DOUBLE_EQ(*Auc({{0.5f, 0}, {0.7f, 0}, {0.5f, 1}, {0.2f, 0}, {0.5f, 0}}), 0.5);
}

TEST(AucTest, UndefinedWithoutBothClasses) {
  EXPECT_FALSE(Auc({}).has_value());
  EXPECT_FALSE(Auc({{0.1f, 1}, {0.5f, 1}}).has_value());
  EXPECT_FALSE(Auc({{0.1f, 0}}).has_value());
}

TEST(AucTest, MatchesBruteForceWithManyTies) {
  std::mt19937 rng(41);
  std::uniform_int_distribution<int> score_bucket(0, 9);  // 10 distinct scores: many ties
  std::bernoulli_distribution positive(0.3);
  std::vector<ScoredLabel> examples;
  for (int i = 0; i < 500; ++i) {
    examples.push_back({0.1f * score_bucket(rng), positive(rng) ? 1.0f : 0.0f});
  }
  EXPECT_NEAR(*Auc(examples), BruteForceAuc(examples), 1e-12);
}

TEST(AucTest, MergedListsGiveTheWholeSetsAuc) {
  const std::vector<ScoredLabel> worker_a = {{0.9f, 1}, {0.2f, 0}, {0.6f, 0}};
  const std::vector<ScoredLabel> worker_b = {{0.6f, 1}, {0.1f, 1}, {0.3f, 0}};
  std::vector<ScoredLabel> merged = worker_a;
  merged.insert(merged.end(), worker_b.begin(), worker_b.end());
  EXPECT_DOUBLE_EQ(*Auc(merged), BruteForceAuc(merged));
}

TEST(LogLossTest, HandComputedValueAndClamp) {
  EXPECT_NEAR(*LogLoss(std::vector<ScoredLabel>{{0.8f, 1}, {0.4f, 0}}),
              -(std::log(0.8) + std::log(0.6)) / 2, 1e-7);
  const double clamped = *LogLoss(std::vector<ScoredLabel>{{0.0f, 1}});
  EXPECT_NEAR(clamped, -std::log(kLogLossEpsilon), 1e-6);
  EXPECT_FALSE(LogLoss({}).has_value());
}

TEST(RmseTest, HandComputedValue) {
  EXPECT_NEAR(*Rmse(std::vector<ScoredLabel>{{1.0f, 2.0f}, {4.0f, 1.0f}}), std::sqrt(5.0), 1e-9);
  EXPECT_FALSE(Rmse({}).has_value());
}

TEST(AccuracyTest, ArgmaxWithFirstOnTies) {
  Matrix logits(4, 3);
  logits << 0.1, 0.9, 0.0,  //
      2.0, 1.0, 2.0,        // tie between 0 and 2: predicts 0
      -1, -2, -0.5,         //
      0, 0, 0;              // all tied: predicts 0
  const std::vector<int32_t> labels = {1, 0, 1, 2};
  EXPECT_DOUBLE_EQ(*Accuracy(logits, labels), 0.5);
  EXPECT_FALSE(Accuracy(Matrix(0, 3), {}).has_value());
}

}  // namespace
}  // namespace granary
