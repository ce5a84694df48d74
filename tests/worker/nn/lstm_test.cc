#include "worker/nn/lstm.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {
namespace nn {
namespace {

using gradient_check::CopyGrads;
using gradient_check::ExpectGradientNear;
using gradient_check::ExpectParameterGradientsNear;
using gradient_check::ProjectOntoWeights;
using gradient_check::RandomMatrix;

constexpr int kInputDim = 3;
constexpr int kHiddenDim = 4;
constexpr int kSteps = 4;
// A full-length, a length-1, two in between and an empty sequence.
const std::vector<int32_t> kLengths = {4, 1, 3, 2, 0};
const int kBatch = static_cast<int>(kLengths.size());

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Sample b's hidden states at steps 0 .. length-1, by the equations in lstm.h, in double and
// one sample at a time: an independent check of the batched, masked implementation.
std::vector<std::vector<double>> ReferenceHiddenStates(const Matrix& weight, const Matrix& bias,
                                                       const Matrix& inputs, int b, int length) {
  const int h = kHiddenDim;
  std::vector<double> hidden(h, 0.0), cell(h, 0.0);
  std::vector<std::vector<double>> states;
  for (int t = 0; t < length; ++t) {
    std::vector<double> pre(4 * h);
    for (int k = 0; k < 4 * h; ++k) {
      double sum = bias(0, k);
      for (int i = 0; i < kInputDim; ++i) sum += inputs(t * kBatch + b, i) * weight(i, k);
      for (int j = 0; j < h; ++j) sum += hidden[j] * weight(kInputDim + j, k);
      pre[k] = sum;
    }
    for (int j = 0; j < h; ++j) {
      const double input_gate = Sigmoid(pre[j]);
      const double forget_gate = Sigmoid(pre[h + j]);
      const double output_gate = Sigmoid(pre[2 * h + j]);
      const double candidate = std::tanh(pre[3 * h + j]);
      cell[j] = forget_gate * cell[j] + input_gate * candidate;
      hidden[j] = output_gate * std::tanh(cell[j]);
    }
    states.push_back(hidden);
  }
  return states;
}

class LstmTest : public ::testing::Test {
 protected:
  LstmTest() : lstm_(&params_, "lstm", kInputDim, kHiddenDim) {
    params_.Initialize(3);
    // Nonzero biases so that the bias gradient check is not at a special point.
    params_.Find("lstm/bias")->value += RandomMatrix(&rng_, 1, 4 * kHiddenDim, 0.5f);
    inputs_ = RandomMatrix(&rng_, kSteps * kBatch, kInputDim);
  }

  bool IsPadding(int t, int b) const { return t >= kLengths[b]; }

  std::mt19937 rng_{5};
  ParameterSet params_;
  Lstm lstm_;
  Matrix inputs_;
};

TEST_F(LstmTest, ForwardMatchesPerSampleReference) {
  const Matrix hidden = lstm_.Forward(inputs_, kLengths);
  ASSERT_EQ(hidden.rows(), kSteps * kBatch);
  ASSERT_EQ(hidden.cols(), kHiddenDim);
  for (int b = 0; b < kBatch; ++b) {
    const auto reference =
        ReferenceHiddenStates(params_.Find("lstm/weight")->value, params_.Find("lstm/bias")->value,
                              inputs_, b, kLengths[b]);
    for (int t = 0; t < kSteps; ++t) {
      for (int j = 0; j < kHiddenDim; ++j) {
        const double expected = IsPadding(t, b) ? 0.0 : reference[t][j];
        EXPECT_NEAR(hidden(t * kBatch + b, j), expected, 1e-5) << "b " << b << " t " << t;
      }
    }
    for (int j = 0; j < kHiddenDim; ++j) {
      const double expected = kLengths[b] > 0 ? reference.back()[j] : 0.0;
      EXPECT_NEAR(lstm_.last_hidden()(b, j), expected, 1e-5) << "b " << b;
    }
  }
}

TEST_F(LstmTest, GradientsMatchCentralDifferences) {
  const Matrix d_hidden = RandomMatrix(&rng_, kSteps * kBatch, kHiddenDim);
  const Matrix d_last_hidden = RandomMatrix(&rng_, kBatch, kHiddenDim);
  auto loss = [&] {
    const Matrix& hidden = lstm_.Forward(inputs_, kLengths);
    return ProjectOntoWeights(hidden, d_hidden) +
           ProjectOntoWeights(lstm_.last_hidden(), d_last_hidden);
  };
  loss();
  const Matrix d_inputs = lstm_.Backward(&d_hidden, &d_last_hidden);
  const std::vector<Matrix> param_grads = CopyGrads(params_);
  ExpectGradientNear("inputs", &inputs_, d_inputs, loss);
  ExpectParameterGradientsNear(&params_, param_grads, loss);
}

TEST_F(LstmTest, GradientsOfEitherOutputAlone) {
  const Matrix d_hidden = RandomMatrix(&rng_, kSteps * kBatch, kHiddenDim);
  const Matrix d_last_hidden = RandomMatrix(&rng_, kBatch, kHiddenDim);
  auto hidden_loss = [&] { return ProjectOntoWeights(lstm_.Forward(inputs_, kLengths), d_hidden); };
  auto last_loss = [&] {
    lstm_.Forward(inputs_, kLengths);
    return ProjectOntoWeights(lstm_.last_hidden(), d_last_hidden);
  };
  hidden_loss();
  const Matrix d_inputs_from_hidden = lstm_.Backward(&d_hidden, nullptr);
  ExpectGradientNear("inputs via hidden", &inputs_, d_inputs_from_hidden, hidden_loss);
  last_loss();
  const Matrix d_inputs_from_last = lstm_.Backward(nullptr, &d_last_hidden);
  ExpectGradientNear("inputs via last_hidden", &inputs_, d_inputs_from_last, last_loss);
}

TEST_F(LstmTest, PaddedStepsHaveZeroStatesAndGetZeroGradient) {
  const Matrix hidden = lstm_.Forward(inputs_, kLengths);
  // Gradient arriving at padded outputs too: the layer must ignore it.
  const Matrix d_hidden = RandomMatrix(&rng_, kSteps * kBatch, kHiddenDim);
  const Matrix d_inputs = lstm_.Backward(&d_hidden, nullptr);
  for (int b = 0; b < kBatch; ++b) {
    for (int t = 0; t < kSteps; ++t) {
      const int row = t * kBatch + b;
      if (IsPadding(t, b)) {
        EXPECT_TRUE(hidden.row(row).isZero()) << "b " << b << " t " << t;
        EXPECT_TRUE(d_inputs.row(row).isZero()) << "b " << b << " t " << t;
      } else {
        EXPECT_FALSE(d_inputs.row(row).isZero()) << "b " << b << " t " << t;
      }
    }
  }
  EXPECT_TRUE(lstm_.last_hidden().row(4).isZero()) << "length 0";
}

TEST_F(LstmTest, ChangingPaddedInputsChangesNothing) {
  const Matrix hidden = lstm_.Forward(inputs_, kLengths);
  const Matrix last_hidden = lstm_.last_hidden();
  Matrix changed = inputs_;
  for (int b = 0; b < kBatch; ++b) {
    for (int t = kLengths[b]; t < kSteps; ++t) changed.row(t * kBatch + b).setConstant(100.0f);
  }
  EXPECT_EQ(lstm_.Forward(changed, kLengths), hidden);
  EXPECT_EQ(lstm_.last_hidden(), last_hidden);
}

TEST_F(LstmTest, AllEmptyBatchIsZero) {
  const std::vector<int32_t> lengths(kBatch, 0);
  EXPECT_TRUE(lstm_.Forward(inputs_, lengths).isZero());
  const Matrix d_hidden = RandomMatrix(&rng_, kSteps * kBatch, kHiddenDim);
  EXPECT_TRUE(lstm_.Backward(&d_hidden, nullptr).isZero());
  for (const auto& block : params_.blocks()) EXPECT_TRUE(block->grad.isZero()) << block->name;
}

TEST(LstmInitTest, ForgetGateBiasStartsAtOne) {
  ParameterSet params;
  Lstm lstm(&params, "lstm", 2, 3);
  params.Initialize(1);
  Matrix expected = Matrix::Zero(1, 12);
  expected.middleCols(3, 3).setConstant(Lstm::kForgetGateInitialBias);
  EXPECT_EQ(params.Find("lstm/bias")->value, expected);
  EXPECT_EQ(params.Find("lstm/weight")->value.rows(), 5);
  EXPECT_EQ(params.Find("lstm/weight")->value.cols(), 12);
}

}  // namespace
}  // namespace nn
}  // namespace granary
