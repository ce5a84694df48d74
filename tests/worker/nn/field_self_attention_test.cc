#include "worker/nn/field_self_attention.h"

#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::ExpectLayerGradientsNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

constexpr int kBatch = 3;
constexpr int kFields = 4;
constexpr int kInputDim = 3;
constexpr int kHeads = 2;
constexpr int kHeadDim = 2;
constexpr int kOutputDim = kHeads * kHeadDim;

class FieldSelfAttentionTest : public ::testing::Test {
 protected:
  FieldSelfAttentionTest() : attention_(&params_, "att", kFields, kInputDim, kHeads, kHeadDim) {
    params_.Initialize(5);
    // Larger than Glorot's so that the attention is far from uniform.
    for (const auto& block : params_.blocks()) block->value *= 2.0f;
    input_ = RandomMatrix(&rng_, kBatch, kFields * kInputDim);
  }

  // Field m of sample b of `matrix` [B, F * width], as doubles.
  static std::vector<double> FieldOf(const Matrix& matrix, int b, int m, int width) {
    std::vector<double> field(width);
    for (int i = 0; i < width; ++i) field[i] = matrix(b, m * width + i);
    return field;
  }

  std::mt19937 rng_{17};
  ParameterSet params_;
  FieldSelfAttention attention_;
  Matrix input_;
};

// The paper's equations 5-8, per sample and head, in double.
TEST_F(FieldSelfAttentionTest, ForwardMatchesPerSampleReference) {
  const Matrix output = attention_.Forward(input_);
  ASSERT_EQ(output.rows(), kBatch);
  ASSERT_EQ(output.cols(), kFields * kOutputDim);
  auto project = [&](const char* weight, int b, int m, int column) {
    const Matrix& w = params_.Find(absl::StrCat("att/", weight))->value;
    double sum = 0;
    for (int i = 0; i < kInputDim; ++i) sum += input_(b, m * kInputDim + i) * w(i, column);
    return sum;
  };
  for (int b = 0; b < kBatch; ++b) {
    for (int h = 0; h < kHeads; ++h) {
      for (int m = 0; m < kFields; ++m) {
        std::vector<double> scores(kFields);
        double normalizer = 0;
        for (int k = 0; k < kFields; ++k) {
          for (int j = h * kHeadDim; j < (h + 1) * kHeadDim; ++j) {
            scores[k] += project("query_weight", b, m, j) * project("key_weight", b, k, j);
          }
          normalizer += std::exp(scores[k]);
        }
        for (int k = 0; k < kFields; ++k) {
          EXPECT_NEAR(attention_.weights()((b * kHeads + h) * kFields + m, k),
                      std::exp(scores[k]) / normalizer, 1e-5);
        }
        for (int j = h * kHeadDim; j < (h + 1) * kHeadDim; ++j) {
          double attended = project("residual_weight", b, m, j);
          for (int k = 0; k < kFields; ++k) {
            attended += std::exp(scores[k]) / normalizer * project("value_weight", b, k, j);
          }
          EXPECT_NEAR(output(b, m * kOutputDim + j), std::max(attended, 0.0), 1e-5)
              << "b " << b << " field " << m << " column " << j;
        }
      }
    }
  }
}

TEST_F(FieldSelfAttentionTest, EveryRowOfWeightsSumsToOne) {
  attention_.Forward(input_);
  ASSERT_EQ(attention_.weights().rows(), kBatch * kHeads * kFields);
  for (Eigen::Index r = 0; r < attention_.weights().rows(); ++r) {
    EXPECT_NEAR(attention_.weights().row(r).sum(), 1.0f, 1e-6) << r;
  }
}

TEST_F(FieldSelfAttentionTest, GradientsMatchCentralDifferences) {
  const Matrix d_output = RandomMatrix(&rng_, kBatch, kFields * kOutputDim);
  ExpectLayerGradientsNear(
      &params_, &input_, [&] { return ProjectOntoWeights(attention_.Forward(input_), d_output); },
      [&] { return attention_.Backward(d_output); });
}

// A draw whose pre-activations keep clear of ReLU's kink, where a central difference is wrong.
constexpr int kStackSeed = 1;

// Stacked as AutoInt stacks them: the second layer reads the first's output.
TEST_F(FieldSelfAttentionTest, StackedLayersGradientsMatchCentralDifferences) {
  FieldSelfAttention second(&params_, "second", kFields, kOutputDim, 1, 3);
  params_.Initialize(kStackSeed);
  const Matrix d_output = RandomMatrix(&rng_, kBatch, kFields * 3);
  ExpectLayerGradientsNear(
      &params_, &input_,
      [&] { return ProjectOntoWeights(second.Forward(attention_.Forward(input_)), d_output); },
      [&] { return attention_.Backward(second.Backward(d_output)); });
}

TEST_F(FieldSelfAttentionTest, SamplesDoNotInteract) {
  const Matrix output = attention_.Forward(input_);
  Matrix changed = input_;
  changed.row(1).setConstant(3.0f);
  const Matrix changed_output = attention_.Forward(changed);
  EXPECT_EQ(changed_output.row(0), output.row(0));
  EXPECT_EQ(changed_output.row(2), output.row(2));
  EXPECT_NE(changed_output.row(1), output.row(1));
}

}  // namespace
}  // namespace nn
}  // namespace granary
