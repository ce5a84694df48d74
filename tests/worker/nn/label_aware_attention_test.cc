#include "worker/nn/label_aware_attention.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectGradientNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

constexpr int kInterests = 3;
constexpr int kDim = 4;
const std::vector<int32_t> kCounts = {3, 1, 0, 2};
const int kBatch = static_cast<int>(kCounts.size());

class LabelAwareAttentionTest : public ::testing::TestWithParam<float> {
 protected:
  LabelAwareAttentionTest()
      : interests_(RandomMatrix(&rng_, kBatch, kInterests * kDim)),
        target_(RandomMatrix(&rng_, kBatch, kDim)) {}

  std::mt19937 rng_{5};
  Matrix interests_;
  Matrix target_;
};

TEST_P(LabelAwareAttentionTest, ForwardMatchesEquationTen) {
  const float power = GetParam();
  LabelAwareAttention attention(kInterests, kDim, power);
  const Matrix user = attention.Forward(interests_, kCounts, target_);
  for (int b = 0; b < kBatch; ++b) {
    std::vector<double> scores(kCounts[b]);
    double normalizer = 0;
    for (int k = 0; k < kCounts[b]; ++k) {
      double x = 0;
      for (int i = 0; i < kDim; ++i) x += interests_(b, k * kDim + i) * target_(b, i);
      scores[k] = std::exp(std::copysign(std::pow(std::abs(x), power), x));
      normalizer += scores[k];
    }
    for (int i = 0; i < kDim; ++i) {
      double expected = 0;
      for (int k = 0; k < kCounts[b]; ++k) {
        expected += scores[k] / normalizer * interests_(b, k * kDim + i);
      }
      EXPECT_NEAR(user(b, i), expected, 1e-5) << "b " << b;
    }
    for (int k = kCounts[b]; k < kInterests; ++k) EXPECT_EQ(attention.weights()(b, k), 0.0f);
  }
  EXPECT_TRUE(user.row(2).isZero());
}

TEST_P(LabelAwareAttentionTest, GradientsMatchCentralDifferences) {
  LabelAwareAttention attention(kInterests, kDim, GetParam());
  const Matrix d_user = RandomMatrix(&rng_, kBatch, kDim);
  auto loss = [&] {
    return ProjectOntoWeights(attention.Forward(interests_, kCounts, target_), d_user);
  };
  loss();
  attention.Backward(d_user);
  const Matrix d_interests = attention.d_interests();
  const Matrix d_target = attention.d_target();
  ExpectGradientNear("interests", &interests_, d_interests, loss);
  ExpectGradientNear("target", &target_, d_target, loss);
  // Interests beyond a sample's count get no gradient.
  EXPECT_TRUE(d_interests.row(1).segment(kDim, 2 * kDim).isZero());
  EXPECT_TRUE(d_interests.row(2).isZero());
}

INSTANTIATE_TEST_SUITE_P(Powers, LabelAwareAttentionTest, ::testing::Values(1.0f, 2.0f, 3.0f));

// A large power attends to the interest that agrees most with the target: the hard attention
// the paper describes as p grows.
TEST(LabelAwareAttentionLimitTest, ALargePowerPicksTheBestInterest) {
  LabelAwareAttention attention(2, 2, 50.0f);
  Matrix interests(1, 4);
  interests << 1.5f, 0.0f, 0.0f, 1.2f;
  Matrix target(1, 2);
  target << 1.0f, 1.0f;
  const Matrix user = attention.Forward(interests, std::vector<int32_t>{2}, target);
  EXPECT_NEAR(user(0, 0), 1.5f, 1e-4);
  EXPECT_NEAR(user(0, 1), 0.0f, 1e-4);
}

}  // namespace
}  // namespace nn
}  // namespace granary
