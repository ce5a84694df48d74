// Numeric gradient checks for the model tests: the gradient a Backward pass computed is
// compared, element by element, with central differences of a scalar loss.
//
// Layers compute in float, so the differences are taken in float (divided by the step the
// float perturbation really took) and compared with a relative-plus-absolute tolerance. A layer's
// output is reduced to a scalar by a fixed random projection (ProjectOntoWeights), whose gradient
// w.r.t. the output is the projection itself: that is the d_output the test hands to Backward.
#ifndef GRANARY_TESTS_TESTING_GRADIENT_CHECK_H_
#define GRANARY_TESTS_TESTING_GRADIENT_CHECK_H_

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {
namespace gradient_check {

// Large enough that float rounding in the loss (~1e-7 relative) stays well below the
// tolerance once divided by 2 * kStep; small enough that the O(kStep^2) truncation error of
// central differences does too.
inline constexpr float kStep = 1e-2f;
// The step of ExpectGradientNearExtrapolated, larger: its truncation error is O(step^4) rather
// than O(step^2), while the loss's float rounding error e (relative ~1e-7, more where the loss
// sums many float terms) enters as 3 e / step. The step that balances the two is about
// FLT_EPSILON^(1/5) ~ 0.04 of the scale on which the loss varies (for step^2, the cube root,
// as kStep); at 1e-2 the rounding alone reached 2.3e-4 on a DAT gradient of 1e-2 under ASan
// (whose code rounds differently), beyond the tolerance. A power of two.
inline constexpr float kExtrapolatedStep = 1.0f / 32;
inline constexpr double kRelativeTolerance = 1e-2;
inline constexpr double kAbsoluteTolerance = 1e-4;

// (loss(x + step) - loss(x - step)) / (the distance between them as floats) for the element
// *value: x +- step is rounded to float, and dividing by the rounded distance rather than
// 2 * step removes that error. *value is restored.
inline double CentralDifference(float* value, float step, const std::function<double()>& loss) {
  const float original = *value;
  const float plus = original + step;
  const float minus = original - step;
  *value = plus;
  const double loss_plus = loss();
  *value = minus;
  const double loss_minus = loss();
  *value = original;
  return (loss_plus - loss_minus) / (static_cast<double>(plus) - static_cast<double>(minus));
}

// A matrix of `rows` x `cols` values drawn from U(-scale, scale).
inline Matrix RandomMatrix(std::mt19937* rng, int rows, int cols, float scale = 1.0f) {
  std::uniform_real_distribution<float> uniform(-scale, scale);
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = uniform(*rng);
  return m;
}

// sum_ij output_ij * weights_ij in double.
inline double ProjectOntoWeights(const Matrix& output, const Matrix& weights) {
  EXPECT_EQ(output.rows(), weights.rows());
  EXPECT_EQ(output.cols(), weights.cols());
  return (output.cast<double>().array() * weights.cast<double>().array()).sum();
}

// Expects `analytic` to be the gradient of loss() w.r.t. *values, where loss() reads
// *values. Each element is perturbed by +-kStep and restored.
inline void ExpectGradientNear(const std::string& what, Matrix* values, const Matrix& analytic,
                               const std::function<double()>& loss) {
  ASSERT_EQ(values->rows(), analytic.rows()) << what;
  ASSERT_EQ(values->cols(), analytic.cols()) << what;
  for (Eigen::Index r = 0; r < values->rows(); ++r) {
    for (Eigen::Index c = 0; c < values->cols(); ++c) {
      const double numeric = CentralDifference(&(*values)(r, c), kStep, loss);
      const double expected = analytic(r, c);
      const double tolerance =
          kAbsoluteTolerance + kRelativeTolerance * std::max(std::abs(numeric), std::abs(expected));
      EXPECT_NEAR(expected, numeric, tolerance) << what << " at (" << r << ", " << c << ")";
    }
  }
}

// As ExpectGradientNear, for losses curved enough (normalized vectors under a sharp softmax,
// covariance alignment) that the O(kStep^2) error of one central difference exceeds the
// tolerance: Richardson extrapolation of the differences at kExtrapolatedStep (h) and h / 2,
// (4 g(h / 2) - g(h)) / 3, cancels that term.
inline void ExpectGradientNearExtrapolated(const std::string& what, Matrix* values,
                                           const Matrix& analytic,
                                           const std::function<double()>& loss) {
  ASSERT_EQ(values->rows(), analytic.rows()) << what;
  ASSERT_EQ(values->cols(), analytic.cols()) << what;
  for (Eigen::Index r = 0; r < values->rows(); ++r) {
    for (Eigen::Index c = 0; c < values->cols(); ++c) {
      float* value = &(*values)(r, c);
      const double numeric = (4.0 * CentralDifference(value, kExtrapolatedStep / 2, loss) -
                              CentralDifference(value, kExtrapolatedStep, loss)) /
                             3.0;
      const double expected = analytic(r, c);
      const double tolerance =
          kAbsoluteTolerance + kRelativeTolerance * std::max(std::abs(numeric), std::abs(expected));
      EXPECT_NEAR(expected, numeric, tolerance) << what << " at (" << r << ", " << c << ")";
    }
  }
}

// Every block's grad, in block order: the analytic gradients to check after one Backward.
inline std::vector<Matrix> CopyGrads(const ParameterSet& params) {
  std::vector<Matrix> grads;
  for (const auto& block : params.blocks()) grads.push_back(block->grad);
  return grads;
}

// ExpectGradientNear (or, with `extrapolated`, ExpectGradientNearExtrapolated) for every
// block of `params` against `analytic` (from CopyGrads).
inline void ExpectParameterGradientsNear(ParameterSet* params, const std::vector<Matrix>& analytic,
                                         const std::function<double()>& loss,
                                         bool extrapolated = false) {
  ASSERT_EQ(params->blocks().size(), analytic.size());
  for (size_t i = 0; i < analytic.size(); ++i) {
    ParamBlock* block = params->blocks()[i].get();
    if (extrapolated) {
      ExpectGradientNearExtrapolated(block->name, &block->value, analytic[i], loss);
    } else {
      ExpectGradientNear(block->name, &block->value, analytic[i], loss);
    }
  }
}

// The whole check of a layer with one input: runs `loss` (the forward pass) once, takes the
// analytic gradients from `backward` (it returns d_input and adds to the parameter grads), and
// compares the input's and every parameter's with central differences of `loss`.
inline void ExpectLayerGradientsNear(ParameterSet* params, Matrix* input,
                                     const std::function<double()>& loss,
                                     const std::function<Matrix()>& backward) {
  loss();
  const Matrix d_input = backward();
  const std::vector<Matrix> grads = CopyGrads(*params);
  ExpectGradientNear("input", input, d_input, loss);
  ExpectParameterGradientsNear(params, grads, loss);
}

// Expects a second `backward()` (after a forward pass) to double every parameter gradient of
// `params`: layers add to their gradients, so that shared parameters sum their uses.
inline void ExpectBackwardAddsToParameterGradients(ParameterSet* params,
                                                   const std::function<void()>& backward) {
  backward();
  const std::vector<Matrix> once = CopyGrads(*params);
  backward();
  for (size_t i = 0; i < once.size(); ++i) {
    EXPECT_TRUE(params->blocks()[i]->grad.isApprox(2 * once[i])) << params->blocks()[i]->name;
  }
}

}  // namespace gradient_check
}  // namespace nn
}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_GRADIENT_CHECK_H_
