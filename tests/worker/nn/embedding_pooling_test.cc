#include "worker/nn/embedding_pooling.h"

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

// Three samples over four pulled rows of dim 2: {0, 2}, {} and {3, 3, 1} (a repeated row).
const std::vector<int32_t> kOffsets = {0, 2, 2, 5};
const std::vector<int32_t> kRowIds = {0, 2, 3, 3, 1};
const std::vector<float> kWeights = {1.0f, 3.0f, 0.5f, 0.5f, 2.0f};

Matrix PulledRows() {
  Matrix rows(4, 2);
  rows << 1, 2,  //
      10, 20,    //
      100, 200,  //
      -1, -3;
  return rows;
}

MultiValuedField Field(bool weighted) {
  return MultiValuedField{kOffsets, kRowIds,
                          weighted ? absl::Span<const float>(kWeights) : absl::Span<const float>()};
}

TEST(PoolEmbeddingsTest, SumAndMeanMatchHandComputed) {
  const Matrix rows = PulledRows();
  Matrix pooled(3, 2);
  Matrix expected(3, 2);

  PoolEmbeddings(rows, Field(false), Pooling::kSum, pooled);
  expected << 101, 202, 0, 0, 8, 14;
  EXPECT_EQ(pooled, expected);

  PoolEmbeddings(rows, Field(false), Pooling::kMean, pooled);
  expected << 50.5, 101, 0, 0, 8.0f / 3, 14.0f / 3;
  EXPECT_TRUE(pooled.isApprox(expected));

  PoolEmbeddings(rows, Field(true), Pooling::kSum, pooled);
  expected << 301, 602, 0, 0, 19, 37;
  EXPECT_EQ(pooled, expected);

  // Weighted mean divides by the sum of weights: 4 and 3.
  PoolEmbeddings(rows, Field(true), Pooling::kMean, pooled);
  expected << 75.25, 150.5, 0, 0, 19.0f / 3, 37.0f / 3;
  EXPECT_TRUE(pooled.isApprox(expected));
}

TEST(PoolEmbeddingsTest, WritesIntoAColumnBlock) {
  const Matrix rows = PulledRows();
  Matrix wide = Matrix::Constant(3, 5, 7.0f);
  PoolEmbeddings(rows, Field(false), Pooling::kSum, wide.middleCols(1, 2));
  Matrix expected(3, 5);
  expected << 7, 101, 202, 7, 7,  //
      7, 0, 0, 7, 7,              //
      7, 8, 14, 7, 7;
  EXPECT_EQ(wide, expected);
}

class PoolEmbeddingsGradientTest
    : public ::testing::TestWithParam<std::tuple<Pooling, bool /*weighted*/>> {};

TEST_P(PoolEmbeddingsGradientTest, GradientsMatchCentralDifferences) {
  const auto [pooling, weighted] = GetParam();
  std::mt19937 rng(17);
  Matrix rows = RandomMatrix(&rng, 4, 3);
  const Matrix d_pooled = RandomMatrix(&rng, 3, 3);
  Matrix pooled(3, 3);
  auto loss = [&] {
    PoolEmbeddings(rows, Field(weighted), pooling, pooled);
    return ProjectOntoWeights(pooled, d_pooled);
  };
  Matrix d_rows = Matrix::Zero(4, 3);
  PoolEmbeddingsBackward(d_pooled, Field(weighted), pooling, d_rows);
  ExpectGradientNear("rows", &rows, d_rows, loss);
}

INSTANTIATE_TEST_SUITE_P(AllModes, PoolEmbeddingsGradientTest,
                         ::testing::Combine(::testing::Values(Pooling::kSum, Pooling::kMean),
                                            ::testing::Bool()));

TEST(PoolEmbeddingsTest, BackwardAddsToTheGradient) {
  const Matrix d_pooled = Matrix::Ones(3, 2);
  Matrix d_rows = Matrix::Ones(4, 2);
  PoolEmbeddingsBackward(d_pooled, Field(false), Pooling::kSum, d_rows);
  Matrix expected(4, 2);
  expected << 2, 2, 2, 2, 2, 2, 3, 3;
  EXPECT_EQ(d_rows, expected);
}

// Two samples, three steps, rows of dim 2: sample 0 has steps {1, 0, padding}, sample 1 {2,
// 2, 1}.
const std::vector<int32_t> kStepRowIds = {1, 0, kPaddingRow, 2, 2, 1};

TEST(GatherSequenceTest, LaysStepsOutTimeMajorWithZeroPadding) {
  Matrix rows(3, 2);
  rows << 1, 2, 3, 4, 5, 6;
  Matrix sequence(6, 2);
  GatherSequence(rows, kStepRowIds, 3, sequence);
  Matrix expected(6, 2);
  expected << 3, 4,  // t 0, b 0
      5, 6,          // t 0, b 1
      1, 2,          // t 1, b 0
      5, 6,          // t 1, b 1
      0, 0,          // t 2, b 0: padding
      3, 4;          // t 2, b 1
  EXPECT_EQ(sequence, expected);
}

TEST(GatherSequenceTest, GradientsMatchCentralDifferences) {
  std::mt19937 rng(19);
  Matrix rows = RandomMatrix(&rng, 3, 2);
  const Matrix d_sequence = RandomMatrix(&rng, 6, 2);
  Matrix sequence(6, 2);
  auto loss = [&] {
    GatherSequence(rows, kStepRowIds, 3, sequence);
    return ProjectOntoWeights(sequence, d_sequence);
  };
  Matrix d_rows = Matrix::Zero(3, 2);
  GatherSequenceBackward(d_sequence, kStepRowIds, 3, d_rows);
  ExpectGradientNear("rows", &rows, d_rows, loss);
}

TEST(GatherSequenceTest, FieldsSideBySideInOneInput) {
  Matrix item_rows(3, 2);
  item_rows << 1, 2, 3, 4, 5, 6;
  Matrix shop_rows(1, 1);
  shop_rows << 9;
  const std::vector<int32_t> shop_ids = {0, 0, kPaddingRow, 0, 0, 0};
  Matrix inputs(6, 3);
  GatherSequence(item_rows, kStepRowIds, 3, inputs.leftCols(2));
  GatherSequence(shop_rows, shop_ids, 3, inputs.rightCols(1));
  EXPECT_EQ(inputs.row(0), (Matrix(1, 3) << 3, 4, 9).finished());
  EXPECT_TRUE(inputs.row(4).isZero());

  // The backward pass reads each field's gradient from its column block.
  Matrix d_item_rows = Matrix::Zero(3, 2);
  Matrix d_shop_rows = Matrix::Zero(1, 1);
  const Matrix d_inputs = Matrix::Ones(6, 3);
  GatherSequenceBackward(d_inputs.leftCols(2), kStepRowIds, 3, d_item_rows);
  GatherSequenceBackward(d_inputs.rightCols(1), shop_ids, 3, d_shop_rows);
  EXPECT_EQ(d_item_rows, (Matrix(3, 2) << 1, 1, 2, 2, 2, 2).finished());
  EXPECT_EQ(d_shop_rows(0, 0), 5.0f);
}

}  // namespace
}  // namespace nn
}  // namespace granary
