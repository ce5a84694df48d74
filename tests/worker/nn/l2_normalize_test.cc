#include "worker/nn/l2_normalize.h"

#include <random>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectGradientNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

TEST(L2NormalizeTest, RowsHaveUnitLength) {
  L2Normalize normalize;
  Matrix input(2, 2);
  input << 3, 4, 0, -2;
  Matrix expected(2, 2);
  expected << 0.6f, 0.8f, 0, -1;
  EXPECT_TRUE(normalize.Forward(input).isApprox(expected));
}

TEST(L2NormalizeTest, ZeroRowStaysFinite) {
  L2Normalize normalize;
  Matrix input = Matrix::Zero(1, 3);
  const Matrix& output = normalize.Forward(input);
  EXPECT_TRUE(output.isZero());
  const Matrix d_output = Matrix::Ones(1, 3);
  const Matrix& d_input = normalize.Backward(d_output);
  EXPECT_TRUE(d_input.allFinite());
}

TEST(L2NormalizeTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(41);
  L2Normalize normalize;
  Matrix input = RandomMatrix(&rng, 4, 5);
  const Matrix d_output = RandomMatrix(&rng, 4, 5);
  auto loss = [&] { return ProjectOntoWeights(normalize.Forward(input), d_output); };
  loss();
  const Matrix d_input = normalize.Backward(d_output);
  ExpectGradientNear("input", &input, d_input, loss);
}

}  // namespace
}  // namespace nn
}  // namespace granary
