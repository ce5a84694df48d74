// TableConfig.weight_decay: Adam's decoupled weight decay (AdamW, ps/optimizer.h), checked
// against Loshchilov & Hutter's update w -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * w) and
// against the coupled l2 it is not.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ps/optimizer.h"

namespace granary {
namespace {

constexpr float kInitialValues[2] = {0.5f, -0.25f};

std::unique_ptr<Optimizer> MakeTable(const std::string& fields) {
  proto::TableConfig table;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      absl::StrCat("name: 't' dim: 2 ", fields), &table))
      << fields;
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeTableOptimizer(table);
  EXPECT_TRUE(optimizer.ok()) << optimizer.status();
  return optimizer.ok() ? *std::move(optimizer) : nullptr;
}

// One row of dim 2 with Adam's slots (m, v).
struct AdamRow {
  explicit AdamRow(const Optimizer& optimizer)
      : values(kInitialValues, kInitialValues + 2), slots(2 * 2) {
    optimizer.InitSlots(values.data(), slots.data(), 2);
  }
  void Push(const Optimizer& optimizer, const float (&grad)[2]) {
    RowUpdate update{values.data(), slots.data(), &meta, grad};
    ASSERT_EQ(optimizer.Apply({&update, 1}, 2), 0u);
  }
  RowMeta meta;
  std::vector<float> values;
  std::vector<float> slots;
};

// Betas exact in float (0.5, 0.75) make the first step hand-computable: m_hat = g and
// v_hat = g^2, so m_hat / (sqrt(v_hat) + eps) = g / (|g| + 1e-8) ~ sign(g), and
//   w = 0.5   - 0.01 (1 + 0.5 * 0.5)     = 0.4875     (g = 1)
//   w = -0.25 - 0.01 (-1 + 0.5 * -0.25)  = -0.23875   (g = -2).
TEST(WeightDecayTest, OneAdamStepIsTheHandComputedAdamWUpdate) {
  std::unique_ptr<Optimizer> adamw = MakeTable(
      "weight_decay: 0.5 optimizer { adam { learning_rate: 0.01 beta1: 0.5 beta2: 0.75 } }");
  ASSERT_NE(adamw, nullptr);
  AdamRow row(*adamw);
  row.Push(*adamw, {1.0f, -2.0f});
  EXPECT_NEAR(row.values[0], 0.4875, 1e-6);
  EXPECT_NEAR(row.values[1], -0.23875, 1e-6);
  // The decay leaves the moments alone: m = 0.5 g, v = 0.25 g^2.
  EXPECT_EQ(row.slots, (std::vector<float>{0.5f, -1.0f, 0.25f, 1.0f}));
  EXPECT_EQ(row.meta.step, 1u);
}

// Three steps at the default betas against Loshchilov & Hutter's AdamW in double.
TEST(WeightDecayTest, StepsFollowAdamWInDouble) {
  constexpr double kLearningRate = 0.01, kDecay = 0.3, kBeta1 = 0.9, kBeta2 = 0.999;
  constexpr double kEpsilon = 1e-8;
  constexpr float kGrads[3][2] = {{1.0f, -2.0f}, {0.5f, 4.0f}, {-3.0f, 0.25f}};
  std::unique_ptr<Optimizer> adamw =
      MakeTable("weight_decay: 0.3 optimizer { adam { learning_rate: 0.01 } }");
  ASSERT_NE(adamw, nullptr);
  AdamRow row(*adamw);
  double w[2] = {kInitialValues[0], kInitialValues[1]}, m[2] = {0, 0}, v[2] = {0, 0};
  for (int t = 1; t <= 3; ++t) {
    row.Push(*adamw, kGrads[t - 1]);
    for (int d = 0; d < 2; ++d) {
      const double g = kGrads[t - 1][d];
      m[d] = kBeta1 * m[d] + (1 - kBeta1) * g;
      v[d] = kBeta2 * v[d] + (1 - kBeta2) * g * g;
      const double m_hat = m[d] / (1 - std::pow(kBeta1, t));
      const double v_hat = v[d] / (1 - std::pow(kBeta2, t));
      w[d] -= kLearningRate * (m_hat / (std::sqrt(v_hat) + kEpsilon) + kDecay * w[d]);
      EXPECT_NEAR(row.values[d], w[d], 1e-6 * std::abs(w[d])) << "step " << t << " dim " << d;
    }
  }
}

// With no gradient, coupled l2 under Adam moves every weight by about lr (its term l2 * w is
// divided by sqrt(v_hat) = |l2 * w|), whatever its size, while the decoupled decay shrinks each
// by the same fraction lr * wd: the two differ as Loshchilov & Hutter say they do.
TEST(WeightDecayTest, DecouplesTheDecayFromAdamsScalingUnlikeL2) {
  constexpr float kZero[2] = {0.0f, 0.0f};
  std::unique_ptr<Optimizer> coupled =
      MakeTable("l2: 0.5 optimizer { adam { learning_rate: 0.01 } }");
  std::unique_ptr<Optimizer> decoupled =
      MakeTable("weight_decay: 0.5 optimizer { adam { learning_rate: 0.01 } }");
  ASSERT_NE(coupled, nullptr);
  ASSERT_NE(decoupled, nullptr);
  AdamRow l2_row(*coupled), decayed_row(*decoupled), untouched(*decoupled);
  l2_row.Push(*coupled, kZero);
  decayed_row.Push(*decoupled, kZero);
  // l2: w - 0.01 sign(w).
  EXPECT_NEAR(l2_row.values[0], 0.49, 1e-6);
  EXPECT_NEAR(l2_row.values[1], -0.24, 1e-6);
  // weight_decay: w (1 - 0.01 * 0.5); the moments stay 0.
  EXPECT_NEAR(decayed_row.values[0], 0.5 * 0.995, 1e-6);
  EXPECT_NEAR(decayed_row.values[1], -0.25 * 0.995, 1e-6);
  EXPECT_EQ(decayed_row.slots, (std::vector<float>(4, 0.0f)));
  // Lazy: a second push decays once more; a row no push touched keeps its values.
  decayed_row.Push(*decoupled, kZero);
  EXPECT_NEAR(decayed_row.values[0], 0.5 * 0.995 * 0.995, 1e-6);
  EXPECT_EQ(untouched.values, (std::vector<float>{0.5f, -0.25f}));
}

TEST(WeightDecayTest, ZeroDecayIsPlainAdam) {
  constexpr float kGrad[2] = {1.0f, -2.0f};
  std::unique_ptr<Optimizer> zero =
      MakeTable("weight_decay: 0 optimizer { adam { learning_rate: 0.01 } }");
  std::unique_ptr<Optimizer> plain = MakeTable("optimizer { adam { learning_rate: 0.01 } }");
  ASSERT_NE(zero, nullptr);
  ASSERT_NE(plain, nullptr);
  AdamRow a(*zero), b(*plain);
  a.Push(*zero, kGrad);
  b.Push(*plain, kGrad);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(a.slots, b.slots);
}

TEST(WeightDecayTest, MakeOptimizerRefusesDecayWithoutAdam) {
  proto::OptimizerConfig sgd;
  sgd.mutable_sgd()->set_learning_rate(0.1f);
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(sgd, {}, 0.5f);
  EXPECT_TRUE(absl::IsInvalidArgument(optimizer.status()));
  EXPECT_NE(optimizer.status().message().find("adam"), std::string::npos) << optimizer.status();
}

}  // namespace
}  // namespace granary
