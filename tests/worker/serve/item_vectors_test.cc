#include "worker/serve/item_vectors.h"

#include <filesystem>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

// Four items of dim 2: along x, along y, along -x, and (1, 1).
VectorSet Items() {
  VectorSet items;
  items.header.set_dim(2);
  items.keys = {10, 20, 30, 40};
  items.values = {1, 0, 0, 1, -1, 0, 1, 1};
  return items;
}

std::vector<uint64_t> Keys(const std::vector<proto::TopKItem>& top) {
  std::vector<uint64_t> keys;
  for (const proto::TopKItem& item : top) keys.push_back(item.key());
  return keys;
}

TEST(TopKItemsTest, RanksByDotProductBestFirstTiesByIndex) {
  UserVectors user{2, 1, {1, 0}};
  absl::StatusOr<std::vector<proto::TopKItem>> top = TopKItems(Items(), user, 3);
  ASSERT_TRUE(top.ok()) << top.status();
  // Scores 1, 0, -1, 1: items 10 and 40 tie (index order), then 20.
  EXPECT_EQ(Keys(*top), (std::vector<uint64_t>{10, 40, 20}));
  EXPECT_EQ((*top)[0].score(), 1);
  EXPECT_EQ((*top)[2].score(), 0);
  // k past the corpus: every item.
  top = TopKItems(Items(), user, 10);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(Keys(*top), (std::vector<uint64_t>{10, 40, 20, 30}));
}

TEST(TopKItemsTest, AUserOfSeveralInterestsScoresAnItemByItsBestOne) {
  // Interests (-1, 0) and (0, 2): item 30 scores 1 by the first, item 20 2 by the second,
  // item 40 2 by the second.
  UserVectors user{2, 2, {-1, 0, 0, 2}};
  absl::StatusOr<std::vector<proto::TopKItem>> top = TopKItems(Items(), user, 4);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(Keys(*top), (std::vector<uint64_t>{20, 40, 30, 10}));
  EXPECT_EQ((*top)[2].score(), 1);
}

TEST(TopKItemsTest, VectorsOfAnotherDimAreAnError) {
  UserVectors user{3, 1, {1, 0, 0}};
  absl::StatusOr<std::vector<proto::TopKItem>> top = TopKItems(Items(), user, 1);
  ASSERT_FALSE(top.ok());
  EXPECT_TRUE(absl::StrContains(top.status().message(), "dim 2")) << top.status();
}

TEST(ItemVectorStoreTest, ADayWithoutExportedVectorsIsNotFoundNamingItsRuns) {
  const std::string root = MakeTempDir("item-vectors");
  ASSERT_FALSE(root.empty());
  std::filesystem::create_directories(root + "/runs/20261101/20261101T000000");
  ItemVectorStore store(root);
  absl::StatusOr<std::shared_ptr<const ItemVectorStore::DayVectors>> vectors =
      store.ForDay("20261101");
  ASSERT_FALSE(vectors.ok());
  EXPECT_TRUE(absl::IsNotFound(vectors.status()));
  EXPECT_TRUE(absl::StrContains(vectors.status().message(), root + "/runs/20261101"))
      << vectors.status();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace granary
