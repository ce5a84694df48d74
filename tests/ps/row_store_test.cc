#include "ps/row_store.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

TEST(RowStoreTest, OpenErrorsNameThePath) {
  std::string dir = MakeTempDir("row-store");
  ASSERT_FALSE(dir.empty());
  std::string file = dir + "/not-a-folder";
  { std::ofstream(file) << "x"; }
  RowStoreOptions options;
  options.path = file;
  absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {"t"});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(file), std::string::npos) << store.status();

  // Corrupt metadata files: RocksDB refuses, and so do we, naming the path.
  options.path = dir + "/db";
  {
    auto opened = RowStore::Open(options, {"t"});
    ASSERT_TRUE(opened.ok());
  }
  for (const auto& entry : std::filesystem::directory_iterator(options.path)) {
    if (entry.path().filename().string().rfind("MANIFEST", 0) == 0) {
      std::ofstream(entry.path(), std::ios::trunc) << "garbage garbage garbage";
    }
  }
  store = RowStore::Open(options, {"t"});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(options.path), std::string::npos) << store.status();
  std::filesystem::remove_all(dir);
}

TEST(RowStoreTest, KeysEncodeInNumericOrder) {
  EXPECT_LT(RowStore::EncodeKey(1), RowStore::EncodeKey(256));
  EXPECT_LT(RowStore::EncodeKey(0x7fffffffffffffffULL), RowStore::EncodeKey(1ULL << 63));
  EXPECT_EQ(RowStore::DecodeKey(RowStore::EncodeKey(0x0123456789abcdefULL)), 0x0123456789abcdefULL);
}

}  // namespace
}  // namespace granary
