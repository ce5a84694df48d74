#include "worker/nn/interest_routing.h"

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

constexpr int kInputDim = 3;
constexpr int kOutputDim = 4;
constexpr int kSteps = 5;
const std::vector<int32_t> kLengths = {5, 2, 0, 4};
const int kBatch = static_cast<int>(kLengths.size());

InterestRoutingOptions Options() {
  InterestRoutingOptions options;
  options.num_interests = 3;
  options.num_iterations = 3;
  options.adaptive_count = false;
  return options;
}

// squash(z) in double.
std::vector<double> Squash(const std::vector<double>& z) {
  double squared = 0;
  for (double x : z) squared += x * x;
  std::vector<double> u(z.size(), 0.0);
  if (squared == 0) return u;
  const double scale = std::sqrt(squared) / (1 + squared);
  for (size_t i = 0; i < z.size(); ++i) u[i] = scale * z[i];
  return u;
}

class InterestRoutingTest : public ::testing::Test {
 protected:
  InterestRoutingTest() : routing_(&params_, "routing", kInputDim, kOutputDim, Options()) {
    params_.Initialize(4);
    params_.Find("routing/bilinear")->value *= 2.0f;
    behaviours_ = RandomMatrix(&rng_, kSteps * kBatch, kInputDim);
  }

  // p_i of step t of sample b, in double.
  std::vector<double> Projected(int t, int b) const {
    const Matrix& bilinear = params_.Find("routing/bilinear")->value;
    std::vector<double> p(kOutputDim, 0.0);
    for (int o = 0; o < kOutputDim; ++o) {
      for (int i = 0; i < kInputDim; ++i) p[o] += behaviours_(t * kBatch + b, i) * bilinear(i, o);
    }
    return p;
  }

  std::mt19937 rng_{21};
  ParameterSet params_;
  InterestRouting routing_;
  Matrix behaviours_;
};

// Algorithm 1 of the paper in double, from the layer's initial logits (the first iteration's
// weights are their softmax).
TEST_F(InterestRoutingTest, ForwardMatchesAlgorithmOne) {
  // A single iteration exposes the initial logits through the weights.
  InterestRoutingOptions one = Options();
  one.num_iterations = 1;
  ParameterSet scratch;
  InterestRouting first(&scratch, "routing", kInputDim, kOutputDim, one);
  scratch.Find("routing/bilinear")->value = params_.Find("routing/bilinear")->value;
  first.Forward(behaviours_, kLengths);
  const Matrix initial_weights = first.routing_weights();

  const Matrix interests = routing_.Forward(behaviours_, kLengths);
  const int k = Options().num_interests;
  for (int b = 0; b < kBatch; ++b) {
    const int length = kLengths[b];
    // Logits from the initial weights: log w is the logit up to a per-step constant, which the
    // softmax ignores.
    std::vector<std::vector<double>> logits(length, std::vector<double>(k));
    for (int t = 0; t < length; ++t) {
      for (int j = 0; j < k; ++j) logits[t][j] = std::log(initial_weights(t * kBatch + b, j));
    }
    std::vector<std::vector<double>> u(k);
    for (int iteration = 0; iteration < Options().num_iterations; ++iteration) {
      std::vector<std::vector<double>> w(length, std::vector<double>(k));
      for (int t = 0; t < length; ++t) {
        double normalizer = 0;
        for (int j = 0; j < k; ++j) normalizer += std::exp(logits[t][j]);
        for (int j = 0; j < k; ++j) w[t][j] = std::exp(logits[t][j]) / normalizer;
      }
      for (int j = 0; j < k; ++j) {
        std::vector<double> z(kOutputDim, 0.0);
        for (int t = 0; t < length; ++t) {
          const std::vector<double> p = Projected(t, b);
          for (int o = 0; o < kOutputDim; ++o) z[o] += w[t][j] * p[o];
        }
        u[j] = Squash(z);
        for (int t = 0; t < length; ++t) {
          const std::vector<double> p = Projected(t, b);
          for (int o = 0; o < kOutputDim; ++o) logits[t][j] += u[j][o] * p[o];
        }
      }
    }
    for (int j = 0; j < k; ++j) {
      for (int o = 0; o < kOutputDim; ++o) {
        EXPECT_NEAR(interests(b, j * kOutputDim + o), u[j][o], 1e-5)
            << "b " << b << " interest " << j;
      }
    }
  }
  // Interests differ: the initial logits set the capsules apart although S is shared.
  EXPECT_GT(
      (interests.row(0).segment(0, kOutputDim) - interests.row(0).segment(kOutputDim, kOutputDim))
          .norm(),
      1e-3);
  EXPECT_TRUE(interests.row(2).isZero());  // no behaviour
}

// The gradient of a projection of the interests w.r.t. S and the behaviours, with the last
// iteration's routing weights held constant: the loss below recomputes the interests from S
// and the behaviours through those fixed weights.
TEST_F(InterestRoutingTest, GradientsMatchCentralDifferencesWithTheRoutingWeightsFixed) {
  routing_.Forward(behaviours_, kLengths);
  const Matrix weights = routing_.routing_weights();
  const int k = Options().num_interests;
  const Matrix d_interests = RandomMatrix(&rng_, kBatch, k * kOutputDim);
  routing_.Backward(d_interests);
  const Matrix d_behaviours = routing_.Backward(d_interests);  // the same again: no state
  const Matrix d_bilinear = params_.Find("routing/bilinear")->grad / 2;

  auto loss = [&] {
    double total = 0;
    for (int b = 0; b < kBatch; ++b) {
      for (int j = 0; j < k; ++j) {
        std::vector<double> z(kOutputDim, 0.0);
        for (int t = 0; t < kLengths[b]; ++t) {
          const std::vector<double> p = Projected(t, b);
          for (int o = 0; o < kOutputDim; ++o) z[o] += weights(t * kBatch + b, j) * p[o];
        }
        const std::vector<double> u = Squash(z);
        for (int o = 0; o < kOutputDim; ++o) total += u[o] * d_interests(b, j * kOutputDim + o);
      }
    }
    return total;
  };
  ExpectGradientNear("behaviours", &behaviours_, d_behaviours, loss);
  ExpectGradientNear("bilinear", &params_.Find("routing/bilinear")->value, d_bilinear, loss);
  for (int b = 0; b < kBatch; ++b) {
    for (int t = kLengths[b]; t < kSteps; ++t) {
      EXPECT_TRUE(d_behaviours.row(t * kBatch + b).isZero()) << "padded b " << b << " t " << t;
    }
  }
}

TEST_F(InterestRoutingTest, PaddedStepsChangeNothing) {
  const Matrix interests = routing_.Forward(behaviours_, kLengths);
  Matrix changed = behaviours_;
  for (int b = 0; b < kBatch; ++b) {
    for (int t = kLengths[b]; t < kSteps; ++t) changed.row(t * kBatch + b).setConstant(50.0f);
  }
  EXPECT_EQ(routing_.Forward(changed, kLengths), interests);
}

// K_b = max(1, min(K, floor(log2(length)))), eq. 9 of the paper.
TEST_F(InterestRoutingTest, AdaptiveCountFollowsTheHistoryLength) {
  InterestRoutingOptions options = Options();
  options.adaptive_count = true;
  options.num_interests = 3;
  ParameterSet params;
  InterestRouting routing(&params, "routing", kInputDim, kOutputDim, options);
  params.Initialize(4);
  const std::vector<int32_t> lengths = {0, 1, 2, 3, 4, 7, 8, 16};
  const int batch = static_cast<int>(lengths.size());
  const Matrix behaviours = RandomMatrix(&rng_, 16 * batch, kInputDim);
  const Matrix interests = routing.Forward(behaviours, lengths);
  EXPECT_EQ(routing.interest_counts(), (std::vector<int32_t>{1, 1, 1, 1, 2, 2, 3, 3}));
  for (int b = 0; b < batch; ++b) {
    for (int j = routing.interest_counts()[b]; j < 3; ++j) {
      EXPECT_TRUE(interests.row(b).segment(j * kOutputDim, kOutputDim).isZero()) << b;
    }
    for (int t = 0; t < lengths[b]; ++t) {
      EXPECT_NEAR(routing.routing_weights().row(t * batch + b).sum(), 1.0f, 1e-6);
    }
  }
}

}  // namespace
}  // namespace nn
}  // namespace granary
