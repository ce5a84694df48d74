#include "worker/nn/mlp.h"

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

TEST(MlpTest, WithoutLayersIsTheIdentity) {
  std::mt19937 rng(1);
  ParameterSet params;
  Mlp mlp(&params, "mlp", 3, {});
  EXPECT_EQ(mlp.output_dim(), 3);
  EXPECT_EQ(params.num_values(), 0);
  const Matrix input = RandomMatrix(&rng, 2, 3);
  EXPECT_EQ(&mlp.Forward(input), &input);
  EXPECT_EQ(&mlp.Backward(input), &input);
}

TEST(MlpTest, LayersAreReluDenseAndGradientsMatchCentralDifferences) {
  std::mt19937 rng(2);
  ParameterSet params;
  const std::vector<uint32_t> widths = {6, 2};
  Mlp mlp(&params, "mlp", 4, widths);
  params.Initialize(4);
  EXPECT_EQ(mlp.output_dim(), 2);
  ASSERT_NE(params.Find("mlp.1/weight"), nullptr);
  Matrix input = RandomMatrix(&rng, 5, 4);
  EXPECT_TRUE((mlp.Forward(input).array() >= 0).all());
  const Matrix d_output = RandomMatrix(&rng, 5, 2);
  auto loss = [&] { return ProjectOntoWeights(mlp.Forward(input), d_output); };
  ExpectLayerGradientsNear(&params, &input, loss, [&] { return mlp.Backward(d_output); });
}

}  // namespace
}  // namespace nn
}  // namespace granary
