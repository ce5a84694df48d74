#include "worker/nn/dense.h"

#include <random>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectBackwardAddsToParameterGradients;
using gradient_check::ExpectLayerGradientsNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

TEST(DenseTest, ForwardIsInputTimesWeightPlusBias) {
  ParameterSet params;
  Dense dense(&params, "dense", 2, 3);
  params.Find("dense/weight")->value << 1, 2, 3, 4, 5, 6;
  params.Find("dense/bias")->value << 0.5, -1, 0;
  Matrix input(2, 2);
  input << 1, 1, 2, -1;
  Matrix expected(2, 3);
  expected << 5.5, 6, 9, -1.5, -2, 0;
  EXPECT_TRUE(dense.Forward(input).isApprox(expected));
}

TEST(DenseTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(7);
  ParameterSet params;
  Dense dense(&params, "dense", 5, 3);
  params.Initialize(1);
  Matrix input = RandomMatrix(&rng, 4, 5);
  const Matrix d_output = RandomMatrix(&rng, 4, 3);
  auto loss = [&] { return ProjectOntoWeights(dense.Forward(input), d_output); };

  ExpectLayerGradientsNear(&params, &input, loss, [&] { return dense.Backward(d_output); });
}

TEST(DenseTest, BackwardAddsToParameterGradients) {
  std::mt19937 rng(8);
  ParameterSet params;
  Dense dense(&params, "dense", 3, 2);
  params.Initialize(1);
  const Matrix input = RandomMatrix(&rng, 4, 3);
  const Matrix d_output = RandomMatrix(&rng, 4, 2);
  dense.Forward(input);
  ExpectBackwardAddsToParameterGradients(&params, [&] { dense.Backward(d_output); });
}

}  // namespace
}  // namespace nn
}  // namespace granary
