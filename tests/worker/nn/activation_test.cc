#include "worker/nn/activation.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectGradientNear;
using gradient_check::kStep;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

TEST(ActivationTest, ForwardValues) {
  Matrix input(1, 3);
  input << -2, 0, 1.5;
  Activation relu(ActivationKind::kRelu);
  Activation sigmoid(ActivationKind::kSigmoid);
  Activation tanh(ActivationKind::kTanh);
  const Matrix relu_out = relu.Forward(input);
  const Matrix sigmoid_out = sigmoid.Forward(input);
  const Matrix tanh_out = tanh.Forward(input);
  for (int i = 0; i < 3; ++i) {
    const double x = input(0, i);
    EXPECT_FLOAT_EQ(relu_out(0, i), std::max(x, 0.0));
    EXPECT_NEAR(sigmoid_out(0, i), 1.0 / (1.0 + std::exp(-x)), 1e-6);
    EXPECT_NEAR(tanh_out(0, i), std::tanh(x), 1e-6);
  }
}

class ActivationGradientTest : public ::testing::TestWithParam<ActivationKind> {};

TEST_P(ActivationGradientTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(11);
  Matrix input = RandomMatrix(&rng, 4, 5, 2.0f);
  // ReLU has a kink at 0: keep every input further from it than the difference step.
  for (Eigen::Index i = 0; i < input.size(); ++i) {
    float& x = input.data()[i];
    if (std::abs(x) < 3 * kStep) x = x < 0 ? -0.5f : 0.5f;
  }
  const Matrix d_output = RandomMatrix(&rng, 4, 5);
  Activation activation(GetParam());
  auto loss = [&] { return ProjectOntoWeights(activation.Forward(input), d_output); };
  loss();
  const Matrix d_input = activation.Backward(d_output);
  ExpectGradientNear("input", &input, d_input, loss);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, ActivationGradientTest,
                         ::testing::Values(ActivationKind::kRelu, ActivationKind::kSigmoid,
                                           ActivationKind::kTanh));

}  // namespace
}  // namespace nn
}  // namespace granary
