#include "worker/nn/cross_network.h"

#include <random>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectBackwardAddsToParameterGradients;
using gradient_check::ExpectLayerGradientsNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

TEST(CrossNetworkTest, OneLayerIsInputTimesCrossPlusInput) {
  ParameterSet params;
  CrossNetwork cross(&params, "cross", 2, 1);
  params.Find("cross.0/weight")->value << 1, 2, 3, 4;
  params.Find("cross.0/bias")->value << 0.5, -1;
  Matrix input(2, 2);
  input << 1, 1, 2, -1;
  // x W + b = [4.5, 5], [-0.5, -1]; x0 * that + x0.
  Matrix expected(2, 2);
  expected << 5.5, 6, 1, 0;
  EXPECT_TRUE(cross.Forward(input).isApprox(expected)) << cross.Forward(input);
}

TEST(CrossNetworkTest, NoLayersIsTheIdentity) {
  std::mt19937 rng(3);
  ParameterSet params;
  CrossNetwork cross(&params, "cross", 4, 0);
  EXPECT_EQ(params.num_values(), 0);
  const Matrix input = RandomMatrix(&rng, 3, 4);
  EXPECT_TRUE(cross.Forward(input).isApprox(input));
  const Matrix d_output = RandomMatrix(&rng, 3, 4);
  EXPECT_TRUE(cross.Backward(d_output).isApprox(d_output));
}

TEST(CrossNetworkTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(7);
  ParameterSet params;
  CrossNetwork cross(&params, "cross", 5, 3);
  params.Initialize(1);
  // Non-zero biases, so their paths into the later layers are checked too.
  for (int l = 0; l < 3; ++l) {
    params.Find("cross." + std::to_string(l) + "/bias")->value = RandomMatrix(&rng, 1, 5, 0.5f);
  }
  Matrix input = RandomMatrix(&rng, 4, 5);
  const Matrix d_output = RandomMatrix(&rng, 4, 5);
  auto loss = [&] { return ProjectOntoWeights(cross.Forward(input), d_output); };

  ExpectLayerGradientsNear(&params, &input, loss, [&] { return cross.Backward(d_output); });
}

TEST(CrossNetworkTest, BackwardAddsToParameterGradients) {
  std::mt19937 rng(8);
  ParameterSet params;
  CrossNetwork cross(&params, "cross", 3, 2);
  params.Initialize(1);
  const Matrix input = RandomMatrix(&rng, 4, 3);
  const Matrix d_output = RandomMatrix(&rng, 4, 3);
  cross.Forward(input);
  ExpectBackwardAddsToParameterGradients(&params, [&] { cross.Backward(d_output); });
}

}  // namespace
}  // namespace nn
}  // namespace granary
