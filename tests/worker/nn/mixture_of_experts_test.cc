#include "worker/nn/mixture_of_experts.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectLayerGradientsNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

TEST(MixtureOfExpertsTest, GatesAreSoftmaxesAndOutputsTheirMixtures) {
  std::mt19937 rng(4);
  ParameterSet params;
  const std::vector<uint32_t> widths = {3};
  MixtureOfExperts moe(&params, "moe", 4, 3, widths, 2);
  params.Initialize(2);
  const Matrix input = RandomMatrix(&rng, 5, 4);
  moe.Forward(input);
  for (int g = 0; g < 2; ++g) {
    const Matrix& weights = moe.gate_weights(g);
    ASSERT_EQ(weights.rows(), 5);
    ASSERT_EQ(weights.cols(), 3);
    EXPECT_TRUE((weights.array() > 0).all());
    for (int b = 0; b < 5; ++b) EXPECT_NEAR(weights.row(b).sum(), 1.0f, 1e-5f);
  }
  // Gates differ per task (their weights are drawn per name), so their mixtures do too.
  EXPECT_FALSE(moe.output(0).isApprox(moe.output(1)));
  // With every gate weight on expert 0 (a huge bias), the mixture is expert 0's output.
  params.Find("moe.gate0/bias")->value << 50, -50, -50;
  params.Find("moe.gate0/weight")->value.setZero();
  moe.Forward(input);
  ParameterSet alone;
  Mlp expert(&alone, "moe.expert0", 4, widths);
  alone.Initialize(2);
  EXPECT_TRUE(moe.output(0).isApprox(expert.Forward(input), 1e-5f));
}

TEST(MixtureOfExpertsTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(9);
  ParameterSet params;
  const std::vector<uint32_t> widths = {5, 3};
  MixtureOfExperts moe(&params, "moe", 4, 3, widths, 2);
  params.Initialize(3);
  Matrix input = RandomMatrix(&rng, 6, 4);
  const Matrix d_output0 = RandomMatrix(&rng, 6, 3);
  const Matrix d_output1 = RandomMatrix(&rng, 6, 3);
  auto loss = [&] {
    moe.Forward(input);
    return ProjectOntoWeights(moe.output(0), d_output0) +
           ProjectOntoWeights(moe.output(1), d_output1);
  };
  const Matrix* d_outputs[] = {&d_output0, &d_output1};
  ExpectLayerGradientsNear(&params, &input, loss, [&] {
    params.ZeroGrads();
    return moe.Backward(d_outputs);
  });
}

}  // namespace
}  // namespace nn
}  // namespace granary
