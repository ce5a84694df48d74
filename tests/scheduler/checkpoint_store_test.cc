#include "scheduler/checkpoint_store.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("granary-ckpt-store");
    ASSERT_FALSE(root_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // A complete checkpoint `id` (folder + manifest).
  void Write(const CheckpointStore& store, uint64_t id) {
    ASSERT_TRUE(store.Prepare(id).ok());
    proto::CheckpointManifest manifest;
    manifest.set_id(id);
    manifest.set_reason(absl::StrCat("test ", id));
    manifest.set_num_servers(2);
    ASSERT_TRUE(store.WriteManifest(manifest).ok());
  }

  std::string root_;
};

TEST_F(CheckpointStoreTest, EmptyOrMissingRootHasNoCheckpoint) {
  CheckpointStore missing(root_ + "/not-yet");
  absl::StatusOr<std::optional<proto::CheckpointManifest>> newest = missing.Newest();
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_FALSE(newest->has_value());
  EXPECT_EQ(*missing.NextId(), 1u);
}

TEST_F(CheckpointStoreTest, NewestIsTheHighestIdWithAManifest) {
  CheckpointStore store(root_);
  Write(store, 1);
  Write(store, 2);
  ASSERT_TRUE(store.Prepare(3).ok());  // cut short: no manifest
  absl::StatusOr<std::optional<proto::CheckpointManifest>> newest = store.Newest();
  ASSERT_TRUE(newest.ok() && newest->has_value()) << newest.status();
  EXPECT_EQ((*newest)->id(), 2u);
  EXPECT_EQ((*newest)->reason(), "test 2");
  EXPECT_EQ(*store.NextId(), 4u);  // never reuses the folder of a failed attempt
  EXPECT_FALSE(std::filesystem::exists(store.DirOf(2) + "/MANIFEST.tmp"));
}

TEST_F(CheckpointStoreTest, CorruptNewestManifestIsAnErrorNotAnOlderCheckpoint) {
  CheckpointStore store(root_);
  Write(store, 1);
  Write(store, 2);
  std::ofstream(store.DirOf(2) + "/MANIFEST", std::ios::trunc) << "id: 2\nnot_a_field {";
  absl::StatusOr<std::optional<proto::CheckpointManifest>> newest = store.Newest();
  ASSERT_TRUE(absl::IsDataLoss(newest.status())) << newest.status();
  EXPECT_NE(newest.status().message().find(store.DirOf(2) + "/MANIFEST"), std::string::npos)
      << newest.status();
}

TEST_F(CheckpointStoreTest, PruneKeepsTheNewestCompleteAndInProgressFolders) {
  CheckpointStore store(root_);
  Write(store, 1);
  ASSERT_TRUE(store.Prepare(2).ok());  // failed attempt
  Write(store, 3);
  Write(store, 4);
  ASSERT_TRUE(store.Prepare(5).ok());  // being written
  absl::StatusOr<int> removed = store.Prune(2);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_FALSE(std::filesystem::exists(store.DirOf(1)));
  EXPECT_FALSE(std::filesystem::exists(store.DirOf(2)));
  EXPECT_TRUE(std::filesystem::exists(store.DirOf(3)));
  EXPECT_TRUE(std::filesystem::exists(store.DirOf(4)));
  EXPECT_TRUE(std::filesystem::exists(store.DirOf(5)));
}

}  // namespace
}  // namespace granary
