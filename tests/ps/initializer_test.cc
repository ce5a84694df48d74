#include "ps/initializer.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

proto::InitializerConfig Config(proto::InitializerConfig::Kind kind, float scale, uint64_t seed) {
  proto::InitializerConfig config;
  config.set_kind(kind);
  config.set_scale(scale);
  config.set_seed(seed);
  return config;
}

TEST(InitializerTest, RandomKindsAreDeterministicPerKeyAndSeedAndWithinBounds) {
  // UNIFORM stays in [-scale, scale], NORMAL is truncated to [-2 scale, 2 scale].
  const struct {
    proto::InitializerConfig::Kind kind;
    float bound;
  } kCases[] = {{proto::InitializerConfig::UNIFORM, 0.25f},
                {proto::InitializerConfig::NORMAL, 0.5f}};
  for (const auto& test_case : kCases) {
    proto::InitializerConfig config = Config(test_case.kind, 0.25f, 7);
    float a[16], b[16], c[16], other_seed[16];
    InitializeRow(config, 42, 16, a);
    InitializeRow(config, 42, 16, b);
    InitializeRow(config, 43, 16, c);
    config.set_seed(8);
    InitializeRow(config, 42, 16, other_seed);
    bool differs_by_key = false, differs_by_seed = false;
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(a[i], b[i]) << test_case.kind;
      EXPECT_LE(std::abs(a[i]), test_case.bound) << test_case.kind;
      differs_by_key |= a[i] != c[i];
      differs_by_seed |= a[i] != other_seed[i];
    }
    EXPECT_TRUE(differs_by_key) << test_case.kind;
    EXPECT_TRUE(differs_by_seed) << test_case.kind;
  }
}

TEST(InitializerTest, UniformValuesNeverChange) {
  // Stored rows and never-pushed keys rely on these exact bits; written down before NORMAL
  // was added.
  float row[4];
  InitializeRow(Config(proto::InitializerConfig::UNIFORM, 0.5f, 7), 42, 4, row);
  EXPECT_EQ(row[0], 0x1.df501p-4f);
  EXPECT_EQ(row[1], -0x1.cee9ep-5f);
  EXPECT_EQ(row[2], 0x1.0e93cp-5f);
  EXPECT_EQ(row[3], 0x1.d7f324p-2f);
}

TEST(InitializerTest, ZerosIsZero) {
  proto::InitializerConfig config;
  float row[4] = {1, 2, 3, 4};
  InitializeRow(config, 5, 4, row);
  for (float v : row) EXPECT_EQ(v, 0.0f);
}

TEST(InitializerTest, NormalHasTheMomentsOfANormalTruncatedAtTwoSigma) {
  constexpr int kKeys = 1250, kDim = 16;
  constexpr float kScale = 0.1f;
  const proto::InitializerConfig config = Config(proto::InitializerConfig::NORMAL, kScale, 3);
  double sum = 0, sum_of_squares = 0;
  std::vector<float> row(kDim);
  for (uint64_t key = 0; key < kKeys; ++key) {
    InitializeRow(config, key * 0x9e3779b97f4a7c15ULL, kDim, row.data());
    for (float v : row) {
      ASSERT_LE(std::abs(v), 2 * kScale);
      sum += v;
      sum_of_squares += static_cast<double>(v) * v;
    }
  }
  constexpr double kDraws = kKeys * kDim;  // 20,000
  const double mean = sum / kDraws;
  const double stddev = std::sqrt(sum_of_squares / kDraws - mean * mean);
  // Standard error of the mean: 0.88 scale / sqrt(20,000) = 0.0062 scale; allow ~5 of them.
  EXPECT_NEAR(mean, 0.0, 0.03 * kScale);
  // A normal truncated at +-2 sigma has stddev sigma sqrt(1 - 4 phi(2) / (2 Phi(2) - 1))
  // = 0.8796 sigma; its sampling error here is ~0.004 sigma.
  EXPECT_NEAR(stddev, 0.8796 * kScale, 0.02 * kScale);
}

TEST(InitializerTest, NormalWithZeroScaleIsZero) {
  float row[8];
  InitializeRow(Config(proto::InitializerConfig::NORMAL, 0.0f, 1), 9, 8, row);
  for (float v : row) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace granary
