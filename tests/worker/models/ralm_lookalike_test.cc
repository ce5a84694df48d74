#include "worker/models/ralm_lookalike.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace {

using nn::Matrix;
using nn::gradient_check::CopyGrads;
using nn::gradient_check::ExpectGradientNear;
using nn::gradient_check::ExpectParameterGradientsNear;
using nn::gradient_check::ProjectOntoWeights;
using nn::gradient_check::RandomMatrix;

constexpr int kDim = 5;
// Samples with 3, 0, 1 and 4 centroids: a sample without seeds scores the bias alone, one with a
// single centroid has both attentions at weight 1.
const std::vector<int32_t> kOffsets = {0, 3, 3, 4, 8};
constexpr int kBatch = 4;
constexpr int kSeeds = 8;

LookalikeOptions SmallOptions() {
  LookalikeOptions options;
  options.attention_dim = 3;
  return options;
}

TEST(LookalikeScorerTest, GradientsOfBothAttentionsAndTheMergeMatchCentralDifferences) {
  std::mt19937 rng(21);
  nn::ParameterSet params;
  LookalikeScorer scorer(&params, "ralm", kDim, SmallOptions());
  // Every parameter drawn, so no gradient hides behind a zero bias or a default weight.
  for (const auto& block : params.blocks()) {
    block->value = RandomMatrix(&rng, static_cast<int>(block->value.rows()),
                                static_cast<int>(block->value.cols()), 1.0f);
  }
  params.Find("ralm/local_sharpness")->value(0, 0) = 2.5f;
  Matrix users = RandomMatrix(&rng, kBatch, kDim);
  Matrix seeds = RandomMatrix(&rng, kSeeds, kDim);
  const Matrix log_shares = RandomMatrix(&rng, kSeeds, 1, 1.0f).array() - 1.0f;
  const Matrix projection = RandomMatrix(&rng, kBatch, 1);

  params.ZeroGrads();
  scorer.Forward(users, seeds, log_shares, kOffsets);
  scorer.Backward(projection);
  const Matrix d_users = scorer.d_users();
  const Matrix d_seeds = scorer.d_seeds();
  const std::vector<Matrix> d_params = CopyGrads(params);
  auto loss = [&]() {
    return ProjectOntoWeights(scorer.Forward(users, seeds, log_shares, kOffsets), projection);
  };
  ExpectGradientNear("users", &users, d_users, loss);
  ExpectGradientNear("seeds", &seeds, d_seeds, loss);
  ExpectParameterGradientsNear(&params, d_params, loss);
  // The sample without seeds passed nothing back to its user.
  EXPECT_EQ(d_users.row(1).norm(), 0.0f);
}

TEST(LookalikeScorerTest, OneCentroidScoresItsCosineTimesBothMergeWeights) {
  nn::ParameterSet params;
  LookalikeScorer scorer(&params, "ralm", 2, SmallOptions());
  params.Initialize(3);
  params.Find("ralm/merge_weight")->value << 2.0f, 3.0f;
  params.Find("ralm/merge_bias")->value(0, 0) = -1.0f;
  Matrix users(2, 2);
  users << 1, 0, 0, 2;
  Matrix means(1, 2);
  means << 1, 1;
  const std::vector<int32_t> offsets = {0, 1, 1};
  const Matrix& logits = scorer.Forward(users, means, Matrix::Zero(1, 1), offsets);
  EXPECT_NEAR(logits(0, 0), 5.0f * std::sqrt(0.5f) - 1.0f, 1e-5);
  EXPECT_NEAR(logits(1, 0), -1.0f, 1e-6) << "no seeds: the bias alone";
}

TEST(LookalikeScorerTest, StartsAsTheSizeWeightedMeanOfTheCentroids) {
  nn::ParameterSet params;
  LookalikeScorer scorer(&params, "ralm", 2, SmallOptions());
  params.Initialize(3);
  // With the attention scores at zero, only the size terms (weight 1) are left.
  params.Find("ralm/global_score")->value.setZero();
  params.Find("ralm/local_weight")->value.setZero();
  Matrix users(1, 2);
  users << 1, 0;
  Matrix seeds(2, 2);
  seeds << 1, 0, 0, 1;
  Matrix log_shares(2, 1);
  log_shares << std::log(0.75f), std::log(0.25f);
  const float logit = scorer.Forward(users, seeds, log_shares, std::vector<int32_t>{0, 2})(0, 0);
  EXPECT_NEAR(scorer.global_weights()(0, 0), 0.75f, 1e-6);
  EXPECT_NEAR(scorer.local_weights()(0, 0), 0.75f, 1e-6);
  // The mean of the seeds is (0.75, 0.25): cosine 0.75 / |(0.75, 0.25)| with the user.
  const float cosine = 0.75f / std::sqrt(0.75f * 0.75f + 0.25f * 0.25f);
  EXPECT_NEAR(logit, 2 * SmallOptions().initial_merge_weight * cosine, 1e-5);
}

TEST(LookalikeScorerTest, LocalAttentionFavoursTheCentroidNearestTheUser) {
  nn::ParameterSet params;
  LookalikeScorer scorer(&params, "ralm", 2, SmallOptions());
  params.Initialize(3);
  params.Find("ralm/local_weight")->value.setIdentity();
  Matrix users(2, 2);
  users << 1, 0, 0, 1;
  Matrix seeds(4, 2);
  seeds << 1, 0, 0, 1, 1, 0, 0, 1;
  scorer.Forward(users, seeds, Matrix::Zero(4, 1), std::vector<int32_t>{0, 2, 4});
  EXPECT_GT(scorer.local_weights()(0, 0), 0.9f);
  EXPECT_GT(scorer.local_weights()(3, 0), 0.9f);
  // The global attention does not depend on the user: the same seeds, the same weights.
  EXPECT_FLOAT_EQ(scorer.global_weights()(0, 0), scorer.global_weights()(2, 0));
}

}  // namespace
}  // namespace granary
