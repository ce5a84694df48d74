#include "common/atomic_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("atomic_file_test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(AtomicFileTest, WriteReplacesTheWholeFileAndLeavesNoTemporary) {
  const std::string path = dir_ + "/manifest";
  ASSERT_TRUE(WriteFileAtomically(path, "first\n").ok());
  EXPECT_EQ(Contents(path), "first\n");
  ASSERT_TRUE(WriteFileAtomically(path, "second, longer\n").ok());
  EXPECT_EQ(Contents(path), "second, longer\n");
  EXPECT_FALSE(std::filesystem::exists(TemporaryPathOf(path)));
  ASSERT_TRUE(WriteFileAtomically(path, "").ok());
  EXPECT_EQ(Contents(path), "");
}

TEST_F(AtomicFileTest, AFailedPublishKeepsTheOldFileAndRemovesTheTemporary) {
  // The final name is a non-empty folder: rename(2) onto it fails after the temporary was
  // written and synced.
  const std::string path = dir_ + "/taken";
  std::filesystem::create_directories(path + "/inside");
  absl::Status status = WriteFileAtomically(path, "lost");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  EXPECT_TRUE(std::filesystem::is_directory(path + "/inside"));
  EXPECT_FALSE(std::filesystem::exists(TemporaryPathOf(path)));
}

TEST_F(AtomicFileTest, AnUncreatableTemporaryIsNamed) {
  const std::string path = dir_ + "/missing/folder/file";
  absl::Status status = WriteFileAtomically(path, "x");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), TemporaryPathOf(path))) << status;
}

TEST_F(AtomicFileTest, PublishFileMovesAClosedTemporaryIntoPlace) {
  const std::string path = dir_ + "/data.gz";
  std::ofstream(TemporaryPathOf(path)) << "payload";
  ASSERT_TRUE(PublishFile(TemporaryPathOf(path), path).ok());
  EXPECT_EQ(Contents(path), "payload");
  EXPECT_FALSE(std::filesystem::exists(TemporaryPathOf(path)));
  // A temporary that is not there: the error names it.
  absl::Status status = PublishFile(dir_ + "/none.tmp", dir_ + "/none");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), dir_ + "/none.tmp")) << status;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/none"));
}

TEST_F(AtomicFileTest, SyncFolderFilesSyncsFilesAndNamesAMissingFolder) {
  std::ofstream(dir_ + "/a") << "a";
  std::ofstream(dir_ + "/b") << "b";
  EXPECT_TRUE(SyncFolderFiles(dir_).ok());
  EXPECT_TRUE(SyncPath(dir_ + "/a").ok());
  absl::Status status = SyncFolderFiles(dir_ + "/missing");
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), dir_ + "/missing")) << status;
}

}  // namespace
}  // namespace granary
