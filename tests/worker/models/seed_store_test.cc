#include "worker/models/seed_store.h"

#include <cmath>

#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr int kDim = 3;

nn::Matrix Vector(float x, float y, float z) {
  nn::Matrix v(1, kDim);
  v << x, y, z;
  return v;
}

TEST(SeedStoreTest, NewItemWithThreeClicksGetsRepresentationAtRefresh) {
  SeedStore store(kDim, SeedStoreOptions{});
  constexpr uint64_t kItem = 42;
  store.AddClick(kItem, Vector(1, 0, 0));
  store.AddClick(kItem, Vector(0, 1, 0));
  store.AddClick(kItem, Vector(0, 0, 2));
  EXPECT_EQ(store.Find(kItem), nullptr) << "represented before a Refresh";
  EXPECT_EQ(store.Refresh(), 1);
  const SeedStore::ItemSeeds* seeds = store.Find(kItem);
  ASSERT_NE(seeds, nullptr);
  EXPECT_EQ(seeds->num_seeds, 3);
  // Fewer seeds than K: every seed is its own centroid.
  ASSERT_EQ(seeds->centroids.rows(), 3);
  EXPECT_EQ(seeds->centroids.row(0), Vector(1, 0, 0));
  EXPECT_EQ(seeds->centroids.row(2), Vector(0, 0, 2));
  EXPECT_TRUE(seeds->mean.isApprox(Vector(1.0f / 3, 1.0f / 3, 2.0f / 3)));
  EXPECT_EQ(store.Refresh(), 0) << "nothing changed since";
}

TEST(SeedStoreTest, KeepsTheMostRecentSeedsClusteredIntoAtMostK) {
  SeedStoreOptions options;
  options.max_seeds_per_item = 4;
  options.clustering.num_clusters = 2;
  SeedStore store(kDim, options);
  constexpr uint64_t kItem = 7;
  // Two old clicks far away, then four recent ones in two tight groups: the old ones leave
  // the ring, and the two centroids are the groups' means.
  store.AddClick(kItem, Vector(-100, -100, -100));
  store.AddClick(kItem, Vector(-100, -100, -100));
  store.AddClick(kItem, Vector(1, 0, 0));
  store.AddClick(kItem, Vector(3, 0, 0));
  store.AddClick(kItem, Vector(0, 10, 0));
  store.AddClick(kItem, Vector(0, 12, 0));
  store.Refresh();
  const SeedStore::ItemSeeds* seeds = store.Find(kItem);
  ASSERT_NE(seeds, nullptr);
  EXPECT_EQ(seeds->num_seeds, 4);
  ASSERT_EQ(seeds->centroids.rows(), 2);
  const bool first_is_x = seeds->centroids(0, 0) > seeds->centroids(0, 1);
  EXPECT_TRUE(seeds->centroids.row(first_is_x ? 0 : 1).isApprox(Vector(2, 0, 0)));
  EXPECT_TRUE(seeds->centroids.row(first_is_x ? 1 : 0).isApprox(Vector(0, 11, 0)));
  EXPECT_TRUE(seeds->mean.isApprox(Vector(1, 5.5f, 0)));
  EXPECT_TRUE(seeds->log_shares.isApprox(nn::Matrix::Constant(2, 1, std::log(0.5f))));
}

TEST(SeedStoreTest, DropsTheLeastRecentlyClickedItemWhenFull) {
  SeedStoreOptions options;
  options.max_items = 2;
  SeedStore store(kDim, options);
  store.AddClick(1, Vector(1, 0, 0));
  store.AddClick(2, Vector(0, 1, 0));
  store.AddClick(1, Vector(1, 1, 0));  // item 1 is now the more recent
  store.AddClick(3, Vector(0, 0, 1));  // full: item 2 goes
  store.Refresh();
  EXPECT_EQ(store.num_items(), 2);
  EXPECT_NE(store.Find(1), nullptr);
  EXPECT_EQ(store.Find(2), nullptr);
  ASSERT_NE(store.Find(3), nullptr);
  EXPECT_EQ(store.Find(1)->num_seeds, 2);
}

}  // namespace
}  // namespace granary
