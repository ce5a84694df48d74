#include "common/feature_key.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace granary {
namespace {

TEST(FeatureKeyTest, IsStableAcrossRunsAndReleases) {
  // Pinned values: a change here silently re-keys every trained model, so it must be a
  // deliberate, migrated decision.
  EXPECT_EQ(FeatureKey("movie_id", "1193"), FeatureKey(FieldSeed("movie_id"), "1193"));
  EXPECT_EQ(FieldSeed(""), 0x2d06800538d394c2ULL);  // XXH3-64 of the empty input
  EXPECT_EQ(FieldSeed("user_id"), 0xd55549748fdc4fa1ULL);
  EXPECT_EQ(FeatureKey("user_id", "42"), 0xcb1d6b3c8bb7e92dULL);
}

TEST(FeatureKeyTest, SameTokenInTwoFieldsGivesTwoKeys) {
  EXPECT_NE(FeatureKey("user_id", "7"), FeatureKey("movie_id", "7"));
}

TEST(FeatureKeyTest, DistinctTokensDoNotCollideOnASample) {
  std::set<uint64_t> keys;
  const uint64_t seed = FieldSeed("movie_id");
  for (int i = 0; i < 100000; ++i) keys.insert(FeatureKey(seed, std::to_string(i)));
  EXPECT_EQ(keys.size(), 100000u);
}

TEST(FeatureKeyTest, KeysSpreadOverTheWholeKeySpace) {
  // Range sharding relies on uniform keys: each of 8 equal ranges gets about 1/8.
  int counts[8] = {};
  const uint64_t seed = FieldSeed("item");
  const int n = 80000;
  for (int i = 0; i < n; ++i) ++counts[FeatureKey(seed, std::to_string(i)) >> 61];
  for (int count : counts) {
    EXPECT_GT(count, n / 8 * 0.95);
    EXPECT_LT(count, n / 8 * 1.05);
  }
}

}  // namespace
}  // namespace granary
