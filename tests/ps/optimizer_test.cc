#include "ps/optimizer.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

// One row in the RowLayout parts an optimizer sees, owned by the test.
struct TestRow {
  TestRow(const Optimizer& optimizer, absl::Span<const float> initial_values)
      : values(initial_values.begin(), initial_values.end()),
        slots(optimizer.num_slots() * values.size()) {
    optimizer.InitSlots(values.data(), slots.data(), dim());
  }

  int dim() const { return static_cast<int>(values.size()); }
  RowUpdate Update(absl::Span<const float> grad) {
    return RowUpdate{values.data(), slots.data(), &meta, grad.data()};
  }

  RowMeta meta;
  std::vector<float> values;
  std::vector<float> slots;
};

std::unique_ptr<Optimizer> MakeFromText(const std::string& text) {
  proto::OptimizerConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(config);
  EXPECT_TRUE(optimizer.ok()) << optimizer.status();
  return std::move(optimizer).value();
}

void ApplyOne(const Optimizer& optimizer, TestRow& row, absl::Span<const float> grad) {
  RowUpdate update = row.Update(grad);
  optimizer.Apply({&update, 1}, row.dim());
}

// Float results against double references: relative 1e-6 (float carries ~6e-8 per
// operation, and a few steps compound it).
void ExpectClose(float actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, 1e-6 * std::abs(expected) + 1e-12) << what;
}

// Expects the row's values to be `values` and its slots (slot-major, as in the row) `slots`.
void ExpectRowIs(const TestRow& row, const std::vector<double>& values,
                 const std::vector<double>& slots, const std::string& what) {
  ASSERT_EQ(row.slots.size(), slots.size()) << what;
  for (int d = 0; d < row.dim(); ++d) {
    ExpectClose(row.values[d], values[d], what + " value " + std::to_string(d));
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    ExpectClose(row.slots[i], slots[i], what + " slot float " + std::to_string(i));
  }
}

// Gradients of the three steps every multi-step test applies to a row.
constexpr float kGrads[3][2] = {{1.0f, -2.0f}, {0.5f, 4.0f}, {-3.0f, 0.25f}};
constexpr float kInitialValues[] = {0.5f, -0.25f};

TEST(OptimizerTest, MakeOptimizerRejectsAConfigWithoutOptimizer) {
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(proto::OptimizerConfig());
  ASSERT_FALSE(optimizer.ok());
  EXPECT_EQ(optimizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(optimizer.status().message().find("no optimizer"), std::string::npos)
      << optimizer.status();
}

TEST(OptimizerTest, NumSlotsPerKind) {
  EXPECT_EQ(MakeFromText("sgd { learning_rate: 1 }")->num_slots(), 0);
  EXPECT_EQ(MakeFromText("adagrad { learning_rate: 1 }")->num_slots(), 1);
  EXPECT_EQ(MakeFromText("adam { learning_rate: 1 }")->num_slots(), 2);
  EXPECT_EQ(MakeFromText("ftrl { alpha: 1 }")->num_slots(), 2);
}

TEST(OptimizerTest, SgdMatchesHandComputedValues) {
  std::unique_ptr<Optimizer> sgd = MakeFromText("sgd { learning_rate: 0.1 }");
  TestRow row(*sgd, kInitialValues);
  // w -= 0.1 g, one line per step.
  const std::vector<double> expected[3] = {{0.5 - 0.1 * 1, -0.25 - 0.1 * -2},       // 0.4, -0.05
                                           {0.4 - 0.1 * 0.5, -0.05 - 0.1 * 4},      // 0.35, -0.45
                                           {0.35 - 0.1 * -3, -0.45 - 0.1 * 0.25}};  // 0.65, -0.475
  for (int step = 0; step < 3; ++step) {
    ApplyOne(*sgd, row, kGrads[step]);
    ExpectRowIs(row, expected[step], {}, "step " + std::to_string(step));
  }
  EXPECT_EQ(row.meta.step, 0u);
}

TEST(OptimizerTest, AdagradMatchesHandComputedValuesWithDefaultAccumulatorAndEpsilon) {
  std::unique_ptr<Optimizer> adagrad = MakeFromText("adagrad { learning_rate: 0.1 }");
  TestRow row(*adagrad, kInitialValues);
  EXPECT_EQ(row.slots, (std::vector<float>{0.1f, 0.1f}));  // default initial_accumulator
  // acc += g^2; w -= 0.1 g / (sqrt(acc) + 1e-8), computed with python3:
  //   step 1: acc = 0.1 + 1    = 1.1,     w = 0.5          - 0.1 * 1   / sqrt(1.1)
  //           acc = 0.1 + 4    = 4.1,     w = -0.25        + 0.1 * 2   / sqrt(4.1)
  //   step 2: acc = 1.1 + 0.25 = 1.35,    w = 0.404653742  - 0.1 * 0.5 / sqrt(1.35)
  //           acc = 4.1 + 16   = 20.1,    w = -0.151227041 - 0.1 * 4   / sqrt(20.1)
  //   step 3: acc = 1.35 + 9   = 10.35,   w = 0.361620594  + 0.1 * 3   / sqrt(10.35)
  //           acc = 20.1 + 1/16 = 20.1625, w = -0.240446988 - 0.1 * 0.25 / sqrt(20.1625)
  const std::vector<double> expected_acc[3] = {{1.1, 4.1}, {1.35, 20.1}, {10.35, 20.1625}};
  const std::vector<double> expected_w[3] = {
      {0.404653742, -0.151227041}, {0.361620594, -0.240446988}, {0.454871075, -0.246014585}};
  for (int step = 0; step < 3; ++step) {
    ApplyOne(*adagrad, row, kGrads[step]);
    ExpectRowIs(row, expected_w[step], expected_acc[step], "step " + std::to_string(step));
  }
}

TEST(OptimizerTest, AdagradUsesConfiguredAccumulatorAndEpsilon) {
  std::unique_ptr<Optimizer> adagrad =
      MakeFromText("adagrad { learning_rate: 0.5 initial_accumulator: 3 epsilon: 0.5 }");
  TestRow row(*adagrad, {0.0f});
  EXPECT_EQ(row.slots[0], 3.0f);
  ApplyOne(*adagrad, row, {1.0f});
  // acc = 3 + 1 = 4; w = 0 - 0.5 * 1 / (sqrt(4) + 0.5) = -0.2
  ExpectRowIs(row, {-0.2}, {4.0}, "one step");
}

// Adam in double, written out from the formulas of config.proto, for one row.
struct AdamReference {
  double lr, b1, b2, eps;
  std::vector<double> w, m, v;
  int t = 0;

  void Step(absl::Span<const float> g) {
    ++t;
    for (size_t d = 0; d < w.size(); ++d) {
      m[d] = b1 * m[d] + (1 - b1) * g[d];
      v[d] = b2 * v[d] + (1 - b2) * g[d] * g[d];
      const double m_hat = m[d] / (1 - std::pow(b1, t));
      const double v_hat = v[d] / (1 - std::pow(b2, t));
      w[d] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

std::vector<double> Concat(std::vector<double> first, const std::vector<double>& second) {
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

void ExpectAdamRowIs(const TestRow& row, const AdamReference& reference, const std::string& what) {
  EXPECT_EQ(row.meta.step, static_cast<uint32_t>(reference.t)) << what;
  ExpectRowIs(row, reference.w, Concat(reference.m, reference.v), what);
}

TEST(OptimizerTest, AdamMatchesReferenceWithDefaults) {
  std::unique_ptr<Optimizer> adam = MakeFromText("adam { learning_rate: 0.01 }");
  TestRow row(*adam, kInitialValues);
  EXPECT_EQ(row.slots, (std::vector<float>(4, 0.0f)));
  // The constants as the optimizer sees them: float(0.01), float(0.9), ...
  AdamReference reference{0.01f, 0.9f, 0.999f, 1e-8f, {0.5, -0.25}, {0, 0}, {0, 0}};
  for (int step = 0; step < 3; ++step) {
    ApplyOne(*adam, row, kGrads[step]);
    reference.Step(kGrads[step]);
    ExpectAdamRowIs(row, reference, "step " + std::to_string(step));
  }
  // Step 1 moves each weight by lr against its gradient's sign: m_hat / sqrt(v_hat) = g / |g|.
  // Steps 2 and 3 by hand for dim 0 (b1 = 0.9, b2 = 0.999):
  //   m = 0.1 * 1 = 0.1;             v = 0.001 * 1 = 0.001
  //   m = 0.09 + 0.05 = 0.14;        v = 0.000999 + 0.00025 = 0.001249
  //   m_hat = 0.14 / 0.19 = 0.736842; v_hat = 0.001249 / 0.001999 = 0.624812
  //   w = 0.49 - 0.01 * 0.736842 / 0.790451 = 0.480678
  //   m = 0.126 - 0.3 = -0.174;      v = 0.001247751 + 0.009 = 0.010247751
  //   m_hat = -0.174 / 0.271 = -0.642066; v_hat = 0.010247751 / 0.002997001 = 3.419335
  //   w = 0.480678 + 0.01 * 0.642066 / 1.849145 = 0.484150
  EXPECT_NEAR(row.values[0], 0.484150, 1e-6);
}

TEST(OptimizerTest, AdamMatchesReferenceWithConfiguredBetasAndEpsilon) {
  std::unique_ptr<Optimizer> adam =
      MakeFromText("adam { learning_rate: 0.05 beta1: 0.5 beta2: 0.75 epsilon: 0.01 }");
  TestRow row(*adam, {0.75f, 2.0f, -1.0f});
  AdamReference reference{0.05f, 0.5f, 0.75f, 0.01f, {0.75, 2, -1}, {0, 0, 0}, {0, 0, 0}};
  constexpr float grads[4][3] = {
      {0.5f, -1.5f, 2.0f}, {-0.25f, 0.75f, 2.0f}, {1.0f, 0.0f, -4.0f}, {0.5f, 3.0f, 0.125f}};
  for (int step = 0; step < 4; ++step) {
    ApplyOne(*adam, row, grads[step]);
    reference.Step(grads[step]);
    ExpectAdamRowIs(row, reference, "step " + std::to_string(step));
  }
}

TEST(OptimizerTest, AdamWithBetasOfZeroStepsByTheLearningRate) {
  // b1 = b2 = 0: m = g, v = g^2, no bias correction; each step moves w by lr against sgn(g).
  std::unique_ptr<Optimizer> adam = MakeFromText("adam { learning_rate: 0.1 beta1: 0 beta2: 0 }");
  TestRow row(*adam, kInitialValues);
  ApplyOne(*adam, row, kGrads[0]);
  ApplyOne(*adam, row, kGrads[1]);
  // 0.5 - 0.1 - 0.1 and -0.25 + 0.1 - 0.1; m and v are the last gradient and its square.
  ExpectRowIs(row, {0.3, -0.25}, {0.5, 4.0, 0.25, 16.0}, "two steps");
}

TEST(OptimizerTest, AdamBiasCorrectionCountsEachRowsOwnSteps) {
  std::unique_ptr<Optimizer> adam = MakeFromText("adam { learning_rate: 0.01 }");
  TestRow busy(*adam, kInitialValues), rare(*adam, kInitialValues);
  AdamReference busy_reference{0.01f, 0.9f, 0.999f, 1e-8f, {0.5, -0.25}, {0, 0}, {0, 0}};
  AdamReference rare_reference = busy_reference;
  for (int step = 0; step < 2; ++step) {
    ApplyOne(*adam, busy, kGrads[step]);
    busy_reference.Step(kGrads[step]);
  }
  // One batch in which `busy` takes its third step and `rare` its first: each is corrected
  // with its own t (3 and 1), not the number of batches.
  RowUpdate batch[] = {busy.Update(kGrads[2]), rare.Update(kGrads[2])};
  adam->Apply(batch, 2);
  busy_reference.Step(kGrads[2]);
  rare_reference.Step(kGrads[2]);
  ExpectAdamRowIs(busy, busy_reference, "busy row");
  ExpectAdamRowIs(rare, rare_reference, "rare row");
  // A first step moves each weight by lr against its gradient's sign (g = -3, 0.25).
  EXPECT_NEAR(rare.values[0], 0.51, 1e-6);
  EXPECT_NEAR(rare.values[1], -0.26, 1e-6);
}

// FTRL-Proximal in double, written out from McMahan et al. 2013, Algorithm 1, for one row.
struct FtrlReference {
  double alpha, beta, l1, l2;
  std::vector<double> w, z, n;

  double Weight(double zd, double nd) const {
    if (std::abs(zd) <= l1) return 0;
    const double sign = zd < 0 ? -1 : 1;
    return -(zd - sign * l1) / ((beta + std::sqrt(nd)) / alpha + l2);
  }

  void Step(absl::Span<const float> g) {
    for (size_t d = 0; d < w.size(); ++d) {
      const double sigma = (std::sqrt(n[d] + g[d] * g[d]) - std::sqrt(n[d])) / alpha;
      z[d] += g[d] - sigma * w[d];
      n[d] += g[d] * g[d];
      w[d] = Weight(z[d], n[d]);
    }
  }
};

TEST(OptimizerTest, FtrlInitSlotsReproducesTheInitialValue) {
  const std::vector<float> values = {0.5f, -0.25f, 0.0f, 1e-6f, -3.0f, 123.0f};
  for (const char* text : {"ftrl { alpha: 0.1 }", "ftrl { alpha: 0.1 l1: 0.05 l2: 0.5 }",
                           "ftrl { alpha: 2 beta: 0.5 l1: 4 l2: 0 }"}) {
    std::unique_ptr<Optimizer> ftrl = MakeFromText(text);
    proto::OptimizerConfig config;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config));
    const proto::FtrlConfig& c = config.ftrl();
    FtrlReference reference{c.alpha(), c.has_beta() ? c.beta() : 1.0f, c.l1(), c.l2(), {}, {}, {}};
    TestRow row(*ftrl, values);
    // z holds |w| (beta / alpha + l2) + l1 as a float, so w comes back to float precision of
    // that sum: a value far smaller than l1 / (beta / alpha + l2) is only kept approximately.
    const double base_denominator = reference.beta / reference.alpha + reference.l2;
    auto tolerance = [&](float value) {
      return 1e-6 * (std::abs(value) + reference.l1 / base_denominator);
    };
    for (size_t d = 0; d < values.size(); ++d) {
      std::string where = std::string(text) + " value " + std::to_string(values[d]);
      EXPECT_EQ(row.slots[values.size() + d], 0.0f) << "n " << where;
      // The paper's weight of (z, n = 0) is the initial value.
      EXPECT_NEAR(reference.Weight(row.slots[d], 0.0), values[d], tolerance(values[d])) << where;
    }
    // So a zero gradient leaves the row where the initializer put it.
    ApplyOne(*ftrl, row, std::vector<float>(values.size(), 0.0f));
    for (size_t d = 0; d < values.size(); ++d) {
      EXPECT_NEAR(row.values[d], values[d], tolerance(values[d]))
          << text << " value " << values[d] << " after a zero gradient";
    }
  }
}

TEST(OptimizerTest, FtrlMatchesReferenceFromTheInitialValue) {
  std::unique_ptr<Optimizer> ftrl = MakeFromText("ftrl { alpha: 0.1 l1: 0.05 l2: 0.5 }");
  TestRow row(*ftrl, {0.5f, -0.25f, 0.0f});
  // z starts at -(w (beta / alpha + l2)) - sgn(w) l1 with beta = 1 (the default):
  //   -(0.5 * 10.5) - 0.05 = -5.3;  0.25 * 10.5 + 0.05 = 2.675;  0 for w = 0.
  EXPECT_NEAR(row.slots[0], -5.3, 1e-6);
  EXPECT_NEAR(row.slots[1], 2.675, 1e-6);
  EXPECT_EQ(row.slots[2], 0.0f);
  FtrlReference reference{0.1f, 1.0, 0.05f, 0.5f, {0.5, -0.25, 0}, {-5.3, 2.675, 0}, {0, 0, 0}};
  constexpr float grads[3][3] = {{1.0f, -2.0f, 0.5f}, {0.5f, 4.0f, -0.25f}, {-3.0f, 0.25f, 2.0f}};
  for (int step = 0; step < 3; ++step) {
    ApplyOne(*ftrl, row, grads[step]);
    reference.Step(grads[step]);
    ExpectRowIs(row, reference.w, Concat(reference.z, reference.n), "step " + std::to_string(step));
  }
  // Step 1 by hand for dim 0: sigma = (sqrt(1) - 0) / 0.1 = 10; z = -5.3 + 1 - 10 * 0.5 = -9.3;
  // n = 1; w = (9.3 - 0.05) / ((1 + 1) / 0.1 + 0.5) = 9.25 / 20.5 = 0.451219512.
  TestRow fresh(*ftrl, {0.5f, -0.25f, 0.0f});
  ApplyOne(*ftrl, fresh, grads[0]);
  ExpectClose(fresh.values[0], 9.25 / 20.5, "first step by hand");
}

TEST(OptimizerTest, FtrlL1KeepsAWeightExactlyZeroWhileZIsWithinL1) {
  std::unique_ptr<Optimizer> ftrl = MakeFromText("ftrl { alpha: 0.5 l1: 1 l2: 0.25 }");
  TestRow row(*ftrl, {0.0f});
  // With w = 0, sigma w = 0, so z is the sum of the gradients: 0.25, then 1.0 = l1.
  ApplyOne(*ftrl, row, {0.25f});
  EXPECT_EQ(row.values[0], 0.0f);
  ApplyOne(*ftrl, row, {0.75f});
  EXPECT_EQ(row.slots[0], 1.0f);
  EXPECT_EQ(row.values[0], 0.0f);
  // z = 1.5 > l1: n = 0.0625 + 0.5625 + 0.25 = 0.875;
  // w = -(1.5 - 1) / ((1 + sqrt(0.875)) / 0.5 + 0.25).
  ApplyOne(*ftrl, row, {0.5f});
  ExpectClose(row.values[0], -0.5 / ((1 + std::sqrt(0.875)) / 0.5 + 0.25), "w past l1");
}

TEST(OptimizerTest, FtrlWithoutBetaAndL2ContinuesFromTheInitialValue) {
  // beta = l2 = 0: the rate alpha / sqrt(n) is infinite at n = 0, where the weight formula
  // is 0 / 0 for the z of a non-zero initial value.
  std::unique_ptr<Optimizer> ftrl = MakeFromText("ftrl { alpha: 0.1 beta: 0 l1: 0.05 }");
  TestRow row(*ftrl, {0.5f, -0.25f});
  // Dim 0: z = -0.05 + 1 - (1 / 0.1) * 0.5 = -4.05, n = 1, w = (4.05 - 0.05) / (1 / 0.1) = 0.4,
  // the initial value moved by alpha against the gradient. Dim 1 gets no gradient: the
  // formula gives 0 (|z| = l1), never NaN.
  ApplyOne(*ftrl, row, {1.0f, 0.0f});
  ExpectClose(row.values[0], 0.4, "w with a gradient");
  EXPECT_EQ(row.values[1], 0.0f);
}

TEST(OptimizerTest, BatchApplyEqualsApplyingRowsOneByOne) {
  constexpr float initial[3][3] = {{0.5f, -0.25f, 0.0f}, {1.0f, 2.0f, -3.0f}, {0, 0, 0}};
  // Row 0 appears twice: the second update must see the first.
  constexpr int row_of_update[4] = {0, 1, 2, 0};
  constexpr float grads[4][3] = {
      {1.0f, -2.0f, 0.5f}, {0.5f, 4.0f, -0.25f}, {-3.0f, 0.25f, 2.0f}, {0.125f, 1.0f, -1.0f}};
  for (const char* text :
       {"sgd { learning_rate: 0.1 }", "adagrad { learning_rate: 0.1 }",
        "adam { learning_rate: 0.01 }", "ftrl { alpha: 0.1 l1: 0.05 l2: 0.5 }"}) {
    std::unique_ptr<Optimizer> optimizer = MakeFromText(text);
    std::vector<TestRow> batched, one_by_one;
    for (const float(&values)[3] : initial) {
      batched.emplace_back(*optimizer, values);
      one_by_one.emplace_back(*optimizer, values);
    }
    std::vector<RowUpdate> batch;
    for (int i = 0; i < 4; ++i) {
      batch.push_back(batched[row_of_update[i]].Update(grads[i]));
      ApplyOne(*optimizer, one_by_one[row_of_update[i]], grads[i]);
    }
    optimizer->Apply(batch, 3);
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(batched[r].values, one_by_one[r].values) << text << " row " << r;
      EXPECT_EQ(batched[r].slots, one_by_one[r].slots) << text << " row " << r;
      EXPECT_EQ(batched[r].meta.step, one_by_one[r].meta.step) << text << " row " << r;
    }
  }
}

TEST(OptimizerTest, AnUpdateThatWouldStoreANonFiniteValueLeavesItsRowAndIsCounted) {
  constexpr float kInitial[2] = {0.5f, -0.25f};
  constexpr float kGood[2] = {1.0f, -2.0f};
  // Finite, but its square overflows Adagrad's accumulator, Adam's v and FTRL's n, and SGD's
  // step at learning rate 10.
  constexpr float kHuge[2] = {1.0f, 3e38f};
  const float kPoisoned[2] = {std::nanf(""), 1.0f};
  for (const char* text :
       {"sgd { learning_rate: 10 }", "adagrad { learning_rate: 0.1 }",
        "adam { learning_rate: 0.01 }", "ftrl { alpha: 0.1 l1: 0.05 l2: 0.5 }"}) {
    std::unique_ptr<Optimizer> optimizer = MakeFromText(text);
    TestRow good(*optimizer, kInitial), huge(*optimizer, kInitial), poisoned(*optimizer, kInitial);
    TestRow reference(*optimizer, kInitial);
    const TestRow untouched(*optimizer, kInitial);
    const RowUpdate batch[3] = {good.Update(kGood), huge.Update(kHuge), poisoned.Update(kPoisoned)};
    EXPECT_EQ(optimizer->Apply(batch, 2), 2u) << text;
    ApplyOne(*optimizer, reference, kGood);
    EXPECT_EQ(good.values, reference.values) << text;
    EXPECT_EQ(good.slots, reference.slots) << text;
    for (const TestRow* row : {&huge, &poisoned}) {
      EXPECT_EQ(row->values, untouched.values) << text;
      EXPECT_EQ(row->slots, untouched.slots) << text;
      EXPECT_EQ(row->meta.step, 0u) << text;  // Adam's step does not advance either
    }
  }
}

// TableConfig.l2 adds l2 * w to the pushed gradient before each optimizer's rule. w0 = (0.5,
// -0.25), g = (-1/32, -2), l2 = 1/8: g' = g + w0 / 8 = (1/32, -65/32), exact in float; the sign
// of g'[0] is the opposite of g[0]'s, so even Adam's first step (about lr * sign(g')) shows the
// term. Expected values by hand (python3, double):
TEST(OptimizerTest, L2AddsItsTermToTheGradientOfEveryOptimizer) {
  constexpr float kInitial[2] = {0.5f, -0.25f};
  constexpr float kGrad[2] = {-0.03125f, -2.0f};
  struct Case {
    const char* optimizer;
    std::vector<double> values;
    std::vector<double> slots;
  };
  const Case cases[] = {
      // w - 0.1 g'
      {"sgd { learning_rate: 0.1 }", {0.496875, -0.046875}, {}},
      // acc = 0.1 + g'^2; w - 0.1 g' / (sqrt(acc) + 1e-8)
      {"adagrad { learning_rate: 0.1 }", {0.490165785, -0.151190242}, {0.1009765625, 4.2259765625}},
      // Betas exact in float: m = 0.5 g'; v = 0.25 g'^2; w - (0.01 / 0.5) m / (sqrt(v / 0.25) +
      // 1e-8)
      {"adam { learning_rate: 0.01 beta1: 0.5 beta2: 0.75 }",
       {0.490000003, -0.240000000},
       {0.015625, -1.015625, 0.000244140625, 1.031494140625}},
      // z0 = -10 w0; n = g'^2; z = z0 + g' - (|g'| / 0.1) w0; w = -z / (sqrt(n) / 0.1 + 10)
      {"ftrl { alpha: 0.1 }",
       {0.496969697, -0.182989691},
       {-5.125, 5.546875, 0.0009765625, 4.1259765625}},
  };
  for (const Case& c : cases) {
    proto::TableConfig table;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
        absl::StrCat("name: 't' dim: 2 l2: 0.125 optimizer { ", c.optimizer, " }"), &table));
    absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeTableOptimizer(table);
    ASSERT_TRUE(optimizer.ok()) << optimizer.status();
    TestRow row(**optimizer, kInitial);
    ApplyOne(**optimizer, row, kGrad);
    ExpectRowIs(row, c.values, c.slots, c.optimizer);
    // Without l2 the same push moves the row elsewhere (Adam's first value the other way).
    table.clear_l2();
    std::unique_ptr<Optimizer> plain = *MakeTableOptimizer(table);
    TestRow unpenalized(*plain, kInitial);
    ApplyOne(*plain, unpenalized, kGrad);
    EXPECT_GT(std::abs(unpenalized.values[0] - row.values[0]), 1e-3f) << c.optimizer;
  }
}

// A row only changes when a push touches it: an Apply over other rows leaves it as it was, and
// a zero gradient still shrinks a pushed row by the L2 term alone.
TEST(OptimizerTest, L2ActsOnlyOnTheRowsOfAnApply) {
  proto::TableConfig table;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "name: 't' dim: 2 l2: 0.5 optimizer { sgd { learning_rate: 0.1 } }", &table));
  std::unique_ptr<Optimizer> sgd = *MakeTableOptimizer(table);
  TestRow pushed(*sgd, kInitialValues), untouched(*sgd, kInitialValues);
  constexpr float kZero[2] = {0.0f, 0.0f};
  for (int step = 0; step < 3; ++step) ApplyOne(*sgd, pushed, kZero);
  // w (1 - 0.1 * 0.5)^3
  ExpectRowIs(pushed, {0.5 * 0.857375, -0.25 * 0.857375}, {}, "pushed");
  EXPECT_EQ(untouched.values, (std::vector<float>{0.5f, -0.25f}));
}

TEST(OptimizerTest, ClippingClampsEachGradientElementBeforeTheUpdate) {
  constexpr float kInitial[3] = {0.5f, -0.25f, 1.0f};
  constexpr float kGrad[3] = {5.0f, -7.0f, 1.0f};
  constexpr float kClamped[3] = {2.0f, -2.0f, 1.0f};
  for (const char* text :
       {"sgd { learning_rate: 0.1 }", "adagrad { learning_rate: 0.1 }",
        "adam { learning_rate: 0.01 }", "ftrl { alpha: 0.1 l1: 0.05 l2: 0.5 }"}) {
    proto::TableConfig table;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
        absl::StrCat("name: 't' dim: 3 clip_gradient_abs: 2 optimizer { ", text, " }"), &table));
    absl::StatusOr<std::unique_ptr<Optimizer>> clipping = MakeTableOptimizer(table);
    ASSERT_TRUE(clipping.ok()) << clipping.status();
    std::unique_ptr<Optimizer> plain = MakeFromText(text);
    TestRow clipped(**clipping, kInitial), reference(*plain, kInitial);
    ApplyOne(**clipping, clipped, kGrad);
    ApplyOne(*plain, reference, kClamped);
    EXPECT_EQ(clipped.values, reference.values) << text;
    EXPECT_EQ(clipped.slots, reference.slots) << text;
    // Without the field, the same table does not clip (Adam's first step differs in m and v
    // only: it moves each value by about the learning rate whatever the gradient's size).
    table.clear_clip_gradient_abs();
    std::unique_ptr<Optimizer> unclipping = *MakeTableOptimizer(table);
    TestRow unclipped(*unclipping, kInitial);
    ApplyOne(*unclipping, unclipped, kGrad);
    EXPECT_TRUE(unclipped.values != reference.values || unclipped.slots != reference.slots) << text;
  }
}

}  // namespace
}  // namespace granary
