#include "ps/unsynced_file_system.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "ps/row_store.h"
#include "rocksdb/env.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

// Counts the syncs that reach the default file system.
class SyncCountingFileSystem : public rocksdb::FileSystemWrapper {
 public:
  SyncCountingFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "SyncCountingFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* debug) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus status = target()->NewWritableFile(name, options, &file, debug);
    if (status.ok()) *result = std::make_unique<CountingFile>(std::move(file), &syncs);
    return status;
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* debug) override {
    std::unique_ptr<rocksdb::FSDirectory> directory;
    rocksdb::IOStatus status = target()->NewDirectory(name, options, &directory, debug);
    if (status.ok()) *result = std::make_unique<CountingDirectory>(std::move(directory), &syncs);
    return status;
  }

  std::atomic<int> syncs{0};

 private:
  class CountingFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    CountingFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::atomic<int>* syncs)
        : FSWritableFileOwnerWrapper(std::move(file)), syncs_(syncs) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
      ++*syncs_;
      return FSWritableFileOwnerWrapper::Sync(options, debug);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      ++*syncs_;
      return FSWritableFileOwnerWrapper::Fsync(options, debug);
    }
    rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t bytes, const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* debug) override {
      ++*syncs_;
      return FSWritableFileOwnerWrapper::RangeSync(offset, bytes, options, debug);
    }

   private:
    std::atomic<int>* syncs_;
  };
  class CountingDirectory : public rocksdb::FSDirectoryWrapper {
   public:
    CountingDirectory(std::unique_ptr<rocksdb::FSDirectory> directory, std::atomic<int>* syncs)
        : FSDirectoryWrapper(std::move(directory)), syncs_(syncs) {}
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      ++*syncs_;
      return FSDirectoryWrapper::Fsync(options, debug);
    }
    rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                          rocksdb::IODebugContext* debug,
                                          const rocksdb::DirFsyncOptions& dir_options) override {
      ++*syncs_;
      return FSDirectoryWrapper::FsyncWithDirOptions(options, debug, dir_options);
    }

   private:
    std::atomic<int>* syncs_;
  };
};

class UnsyncedFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("unsynced-fs"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(UnsyncedFileSystemTest, WritesReachTheFileAndSyncsDoNot) {
  auto counting = std::make_shared<SyncCountingFileSystem>();
  UnsyncedFileSystem unsynced(counting);
  const std::string path = dir_ + "/file";
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(unsynced.NewWritableFile(path, {}, &file, nullptr).ok());
  ASSERT_TRUE(file->Append("rows", {}, nullptr).ok());
  EXPECT_TRUE(file->Sync({}, nullptr).ok());
  EXPECT_TRUE(file->Fsync({}, nullptr).ok());
  EXPECT_TRUE(file->RangeSync(0, 4, {}, nullptr).ok());
  ASSERT_TRUE(file->Close({}, nullptr).ok());
  std::unique_ptr<rocksdb::FSDirectory> directory;
  ASSERT_TRUE(unsynced.NewDirectory(dir_, {}, &directory, nullptr).ok());
  EXPECT_TRUE(directory->Fsync({}, nullptr).ok());
  EXPECT_EQ(counting->syncs.load(), 0);

  std::ifstream written(path);
  std::string content;
  written >> content;
  EXPECT_EQ(content, "rows");
}

// A RowStore writes, ingests and checkpoints without one RocksDB sync; what it wrote is there
// after reopening, and in the checkpoint.
TEST_F(UnsyncedFileSystemTest, RowStoreSkipsRocksDbSyncsAndKeepsItsRows) {
  auto counting = std::make_shared<SyncCountingFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(counting);
  RowStoreOptions options;
  options.path = dir_ + "/db";
  options.env = env.get();
  const std::string checkpoint = dir_ + "/checkpoint";
  {
    absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {"items"});
    ASSERT_TRUE(store.ok()) << store.status();
    RowStore::Batch batch = (*store)->NewBatch();
    batch.PutRow(0, 7, "seven", 5);
    ASSERT_TRUE((*store)->Write(batch).ok());
    ASSERT_TRUE((*store)->Checkpoint(checkpoint).ok());
  }
  EXPECT_EQ(counting->syncs.load(), 0);
  for (const std::string& path : {options.path, checkpoint}) {
    RowStoreOptions reopen;
    reopen.path = path;
    absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(reopen, {"items"});
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<rocksdb::PinnableSlice> records;
    std::vector<bool> found;
    ASSERT_TRUE((*store)->MultiGet(0, {7}, &records, &found, nullptr).ok());
    ASSERT_TRUE(found[0]) << path;
    EXPECT_EQ(records[0].ToString(), "seven") << path;
  }
}

}  // namespace
}  // namespace granary
