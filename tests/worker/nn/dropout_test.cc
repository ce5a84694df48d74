#include "worker/nn/dropout.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"
#include "worker/nn/mlp.h"
#include "worker/nn/parameter_set.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectLayerGradientsNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

TEST(DropoutTest, InferenceIsTheIdentity) {
  std::mt19937 rng(1);
  ForwardMode mode;
  Dropout dropout(&mode, "d", 0.5f);
  const Matrix input = RandomMatrix(&rng, 4, 3);
  EXPECT_EQ(&dropout.Forward(input), &input);
  EXPECT_EQ(&dropout.Backward(input), &input);
}

// Each element is dropped or scaled by 1 / (1 - rate); about `rate` of them are dropped, and
// Backward passes the gradient through the same mask.
TEST(DropoutTest, TrainingDropsAboutRateAndScalesTheRest) {
  constexpr float kRate = 0.3f;
  ForwardMode mode{true, 17, 1};
  Dropout dropout(&mode, "d", kRate);
  const Matrix input = Matrix::Constant(200, 50, 2.0f);
  const Matrix output = dropout.Forward(input);
  const Matrix d_input = dropout.Backward(Matrix::Constant(200, 50, 1.0f));
  int dropped = 0;
  for (Eigen::Index i = 0; i < output.size(); ++i) {
    const float y = output.data()[i];
    ASSERT_TRUE(y == 0.0f || y == 2.0f / (1.0f - kRate)) << y;
    EXPECT_EQ(d_input.data()[i], y / 2.0f);
    dropped += y == 0.0f;
  }
  // 10,000 Bernoulli(0.3) draws: standard deviation 0.0046 of the fraction; 0.02 is > 4 sigma.
  EXPECT_NEAR(dropped / 10000.0, kRate, 0.02);
}

// The mask is a function of (seed, step, layer name) alone.
TEST(DropoutTest, MasksDependOnSeedStepAndLayerOnly) {
  const Matrix input = Matrix::Constant(16, 16, 1.0f);
  auto mask = [&](uint64_t seed, int64_t step, const char* name) {
    ForwardMode mode{true, seed, step};
    Dropout dropout(&mode, name, 0.5f);
    return Matrix(dropout.Forward(input));
  };
  const Matrix reference = mask(1, 1, "a");
  EXPECT_EQ(mask(1, 1, "a"), reference);
  EXPECT_NE(mask(1, 2, "a"), reference);
  EXPECT_NE(mask(2, 1, "a"), reference);
  EXPECT_NE(mask(1, 1, "b"), reference);
  // One layer over several passes: rerunning a step draws its mask again, whatever came between.
  ForwardMode mode{true, 1, 1};
  Dropout dropout(&mode, "a", 0.5f);
  dropout.Forward(input);
  mode.step = 2;
  dropout.Forward(input);
  mode.step = 1;
  EXPECT_EQ(dropout.Forward(input), reference);
}

// With the training pass's mask fixed (one seed and step), the Mlp's gradients are those of the
// masked network; in inference it equals the same Mlp without dropout.
TEST(DropoutTest, MlpWithDropoutHasExactGradientsAndIsPlainInInference) {
  std::mt19937 rng(3);
  const std::vector<uint32_t> widths = {8, 3};
  ParameterSet params, plain_params;
  Mlp mlp(&params, "mlp", 4, widths, 0.5f);
  Mlp plain(&plain_params, "mlp", 4, widths);
  // Every value random, biases too: a sample whose hidden units are all dropped would otherwise
  // put the next layer's pre-activations exactly on ReLU's kink (a zero bias).
  for (size_t b = 0; b < params.blocks().size(); ++b) {
    Matrix& value = params.blocks()[b]->value;
    value = RandomMatrix(&rng, static_cast<int>(value.rows()), static_cast<int>(value.cols()));
    plain_params.blocks()[b]->value = value;
  }
  Matrix input = RandomMatrix(&rng, 6, 4);
  const Matrix inference = mlp.Forward(input);
  EXPECT_EQ(inference, plain.Forward(input));

  params.forward_mode() = ForwardMode{true, 9, 4};
  const Matrix training = mlp.Forward(input);
  EXPECT_NE(training, inference);
  const Matrix d_output = RandomMatrix(&rng, 6, 3);
  auto loss = [&] { return ProjectOntoWeights(mlp.Forward(input), d_output); };
  ExpectLayerGradientsNear(&params, &input, loss, [&] { return mlp.Backward(d_output); });
}

}  // namespace
}  // namespace nn
}  // namespace granary
