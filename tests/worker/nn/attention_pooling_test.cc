#include "worker/nn/attention_pooling.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::CopyGrads;
using gradient_check::ExpectGradientNear;
using gradient_check::ExpectParameterGradientsNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

constexpr int kStateDim = 4;
constexpr int kQueryDim = 3;
constexpr int kAttentionDim = 5;
constexpr int kSteps = 4;
const std::vector<int32_t> kLengths = {4, 1, 3, 2, 0};
const int kBatch = static_cast<int>(kLengths.size());

class AttentionPoolingTest : public ::testing::Test {
 protected:
  AttentionPoolingTest() : attention_(&params_, "att", kStateDim, kQueryDim, kAttentionDim) {
    params_.Initialize(9);
    params_.Find("att/bias")->value = RandomMatrix(&rng_, 1, kAttentionDim, 0.5f);
    // Larger weights than Glorot's so that the attention is far from uniform.
    params_.Find("att/score_vector")->value *= 3.0f;
    states_ = RandomMatrix(&rng_, kSteps * kBatch, kStateDim);
    query_ = RandomMatrix(&rng_, kBatch, kQueryDim);
  }

  std::mt19937 rng_{13};
  ParameterSet params_;
  AttentionPooling attention_;
  Matrix states_;
  Matrix query_;
};

TEST_F(AttentionPoolingTest, ForwardMatchesPerSampleReference) {
  const Matrix pooled = attention_.Forward(states_, query_, kLengths);
  const Matrix& state_weight = params_.Find("att/state_weight")->value;
  const Matrix& query_weight = params_.Find("att/query_weight")->value;
  const Matrix& bias = params_.Find("att/bias")->value;
  const Matrix& score_vector = params_.Find("att/score_vector")->value;
  for (int b = 0; b < kBatch; ++b) {
    std::vector<double> scores;
    for (int t = 0; t < kLengths[b]; ++t) {
      double score = 0.0;
      for (int k = 0; k < kAttentionDim; ++k) {
        double pre = bias(0, k);
        for (int i = 0; i < kStateDim; ++i) pre += states_(t * kBatch + b, i) * state_weight(i, k);
        for (int i = 0; i < kQueryDim; ++i) pre += query_(b, i) * query_weight(i, k);
        score += std::tanh(pre) * score_vector(k, 0);
      }
      scores.push_back(score);
    }
    double normalizer = 0.0;
    for (double score : scores) normalizer += std::exp(score);
    for (int i = 0; i < kStateDim; ++i) {
      double expected = 0.0;
      for (int t = 0; t < kLengths[b]; ++t) {
        expected += std::exp(scores[t]) / normalizer * states_(t * kBatch + b, i);
      }
      EXPECT_NEAR(pooled(b, i), expected, 1e-5) << "b " << b;
    }
    for (int t = 0; t < kSteps; ++t) {
      const double expected = t < kLengths[b] ? std::exp(scores[t]) / normalizer : 0.0;
      EXPECT_NEAR(attention_.weights()(t, b), expected, 1e-6) << "b " << b << " t " << t;
    }
  }
}

TEST_F(AttentionPoolingTest, GradientsMatchCentralDifferences) {
  const Matrix d_pooled = RandomMatrix(&rng_, kBatch, kStateDim);
  auto loss = [&] {
    return ProjectOntoWeights(attention_.Forward(states_, query_, kLengths), d_pooled);
  };
  loss();
  attention_.Backward(d_pooled);
  const Matrix d_states = attention_.d_states();
  const Matrix d_query = attention_.d_query();
  const std::vector<Matrix> param_grads = CopyGrads(params_);
  ExpectGradientNear("states", &states_, d_states, loss);
  ExpectGradientNear("query", &query_, d_query, loss);
  ExpectParameterGradientsNear(&params_, param_grads, loss);
}

TEST_F(AttentionPoolingTest, PaddedStatesChangeNothingAndGetZeroGradient) {
  const Matrix pooled = attention_.Forward(states_, query_, kLengths);
  Matrix changed = states_;
  for (int b = 0; b < kBatch; ++b) {
    for (int t = kLengths[b]; t < kSteps; ++t) changed.row(t * kBatch + b).setConstant(100.0f);
  }
  EXPECT_EQ(attention_.Forward(changed, query_, kLengths), pooled);
  attention_.Backward(RandomMatrix(&rng_, kBatch, kStateDim));
  for (int b = 0; b < kBatch; ++b) {
    for (int t = 0; t < kSteps; ++t) {
      EXPECT_EQ(attention_.d_states().row(t * kBatch + b).isZero(), t >= kLengths[b])
          << "b " << b << " t " << t;
    }
  }
}

TEST_F(AttentionPoolingTest, EmptySequencePoolsToZeroAndPassesNoGradient) {
  const Matrix pooled = attention_.Forward(states_, query_, kLengths);
  EXPECT_TRUE(pooled.row(4).isZero());
  EXPECT_TRUE(attention_.weights().col(4).isZero());
  attention_.Backward(RandomMatrix(&rng_, kBatch, kStateDim));
  EXPECT_TRUE(attention_.d_query().row(4).isZero());
  EXPECT_FALSE(attention_.d_query().row(0).isZero());
}

TEST_F(AttentionPoolingTest, WeightsOfALengthOneSampleAreOne) {
  attention_.Forward(states_, query_, kLengths);
  EXPECT_FLOAT_EQ(attention_.weights()(0, 1), 1.0f);
}

TEST_F(AttentionPoolingTest, AllEmptyBatchIsZero) {
  const std::vector<int32_t> lengths(kBatch, 0);
  EXPECT_TRUE(attention_.Forward(states_, query_, lengths).isZero());
  attention_.Backward(RandomMatrix(&rng_, kBatch, kStateDim));
  EXPECT_TRUE(attention_.d_states().isZero());
  EXPECT_TRUE(attention_.d_query().isZero());
  for (const auto& block : params_.blocks()) EXPECT_TRUE(block->grad.isZero()) << block->name;
}

// One sequence against N = kBatch queries equals Forward over N copies of it, padded steps
// (length < T) and an empty sequence included.
TEST_F(AttentionPoolingTest, ForwardOneSequenceMatchesForwardOverCopies) {
  for (int length : {3, kSteps, 0}) {
    const Matrix sequence = RandomMatrix(&rng_, kSteps, kStateDim);
    Matrix copies(kSteps * kBatch, kStateDim);
    for (int t = 0; t < kSteps; ++t) StepRows(copies, t, kBatch).rowwise() = sequence.row(t);
    const std::vector<int32_t> lengths(kBatch, length);
    const Matrix expected = attention_.Forward(copies, query_, lengths);
    const Matrix& actual = attention_.ForwardOneSequence(sequence, length, query_);
    ASSERT_EQ(actual.rows(), kBatch);
    EXPECT_LE((actual - expected).cwiseAbs().maxCoeff(), 1e-6f) << "length " << length;
    if (length > 1) {
      EXPECT_GT((expected.row(0) - expected.row(1)).norm(), 0.0f);
    }
  }
}

}  // namespace
}  // namespace nn
}  // namespace granary
