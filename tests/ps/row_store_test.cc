#include "ps/row_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
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

// The record of `key` written in `round`: 152 bytes, like a dim-16 Adagrad row.
std::string Record(uint64_t key, int round) {
  std::string record(152, '\0');
  for (size_t i = 0; i < record.size(); ++i) {
    record[i] = static_cast<char>((key * 31 + i * 7 + round * 13) & 0xff);
  }
  return record;
}

struct ReadPath {
  bool mmap_reads;
  bool partitioned_index;
  size_t block_bytes;
  int hash_index_prefix_bytes = 0;
  bool plain_table = false;
};

RowStoreOptions OptionsFor(const std::string& path, const ReadPath& read_path) {
  RowStoreOptions options;
  options.path = path;
  options.mmap_reads = read_path.mmap_reads;
  options.partitioned_index = read_path.partitioned_index;
  options.block_bytes = read_path.block_bytes;
  options.hash_index_prefix_bytes = read_path.hash_index_prefix_bytes;
  options.plain_table = read_path.plain_table;
  return options;
}

// Expects a scan of `store`'s table 0 to return exactly `expected`, in key order.
void ExpectScanReads(RowStore& store, const std::map<uint64_t, std::string>& expected) {
  std::unique_ptr<rocksdb::Iterator> scan = store.NewRowIterator(0);
  auto next = expected.begin();
  for (scan->SeekToFirst(); scan->Valid(); scan->Next(), ++next) {
    ASSERT_NE(next, expected.end());
    ASSERT_EQ(RowStore::DecodeKey(scan->key()), next->first);
    ASSERT_EQ(scan->value().ToString(), next->second);
  }
  ASSERT_TRUE(scan->status().ok());
  EXPECT_EQ(next, expected.end());
}

// Writes rows over several files (each round overwrites a third of the keys and is flushed to
// a file of its own) with `written`, then reopens the store with `read` and expects MultiGet,
// in any key order and mixed with absent keys, and a scan to return the newest records: a
// store written with one read path's options reads the same with another's.
void ExpectNewestRowsRead(const ReadPath& written, const ReadPath& read) {
  const std::string dir = MakeTempDir("row-store-read");
  ASSERT_FALSE(dir.empty());
  constexpr uint64_t kKeys = 20000;
  constexpr int kRounds = 3;
  std::mt19937_64 rng(11);
  std::vector<uint64_t> keys(kKeys);
  for (uint64_t& key : keys) key = rng();
  std::map<uint64_t, std::string> newest;
  {
    absl::StatusOr<std::unique_ptr<RowStore>> store =
        RowStore::Open(OptionsFor(dir + "/db", written), {"t"});
    ASSERT_TRUE(store.ok()) << store.status();
    for (int round = 0; round < kRounds; ++round) {
      RowStore::Batch batch = (*store)->NewBatch();
      for (uint64_t i = 0; i < kKeys; ++i) {
        if (round > 0 && i % 3 != static_cast<uint64_t>(round) % 3) continue;
        newest[keys[i]] = Record(keys[i], round);
        batch.PutRow(0, keys[i], newest[keys[i]].data(), newest[keys[i]].size());
      }
      ASSERT_TRUE((*store)->Write(batch).ok());
      // A checkpoint flushes the memtables: each round becomes a file of its own.
      const std::string scratch = dir + "/flush-" + std::to_string(round);
      ASSERT_TRUE((*store)->Checkpoint(scratch).ok());
      std::filesystem::remove_all(scratch);
    }
  }
  absl::StatusOr<std::unique_ptr<RowStore>> store =
      RowStore::Open(OptionsFor(dir + "/db", read), {"t"});
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<uint64_t> lookups = keys;
  for (int i = 0; i < 100; ++i) lookups.push_back(rng());  // absent (with near certainty)
  std::shuffle(lookups.begin(), lookups.end(), rng);
  for (bool sorted : {false, true}) {
    if (sorted) std::sort(lookups.begin(), lookups.end());
    std::vector<rocksdb::PinnableSlice> records;
    std::vector<bool> found;
    ASSERT_TRUE((*store)->MultiGet(0, lookups, &records, &found, nullptr).ok());
    for (size_t i = 0; i < lookups.size(); ++i) {
      auto it = newest.find(lookups[i]);
      ASSERT_EQ(found[i], it != newest.end()) << "key " << lookups[i];
      if (found[i]) {
        ASSERT_EQ(records[i].ToString(), it->second) << "key " << lookups[i];
      }
    }
  }
  ExpectScanReads(**store, newest);
  store->reset();
  std::filesystem::remove_all(dir);
}

TEST(RowStoreTest, EveryReadPathReadsTheNewestRows) {
  const ReadPath defaults{RowStoreOptions().mmap_reads, RowStoreOptions().partitioned_index,
                          RowStoreOptions().block_bytes};
  const ReadPath before{/*mmap_reads=*/false, /*partitioned_index=*/false, /*block_bytes=*/4096};
  ExpectNewestRowsRead(defaults, defaults);
  ExpectNewestRowsRead(before, before);
  ExpectNewestRowsRead(before, defaults);  // a store of an earlier build
  ExpectNewestRowsRead(defaults, before);
  const ReadPath hashed{/*mmap_reads=*/true, /*partitioned_index=*/false, /*block_bytes=*/1024,
                        /*hash_index_prefix_bytes=*/2};
  ExpectNewestRowsRead(hashed, hashed);
  ExpectNewestRowsRead(defaults, hashed);  // files with a partitioned index, read hashed
  ExpectNewestRowsRead(hashed, defaults);
  const ReadPath whole_key{/*mmap_reads=*/true, /*partitioned_index=*/false,
                           /*block_bytes=*/1024, /*hash_index_prefix_bytes=*/8};
  ExpectNewestRowsRead(whole_key, whole_key);
  ExpectNewestRowsRead(hashed, whole_key);
}

// PlainTable files (RowStoreOptions::plain_table) read the newest rows, and so does a store
// of block-based files opened with the option (it reads both formats).
TEST(RowStoreTest, PlainTableFilesReadTheNewestRows) {
  const ReadPath defaults{RowStoreOptions().mmap_reads, RowStoreOptions().partitioned_index,
                          RowStoreOptions().block_bytes};
  ReadPath plain = defaults;
  plain.plain_table = true;
  ExpectNewestRowsRead(plain, plain);
  ExpectNewestRowsRead(defaults, plain);
  ReadPath plain_pread = plain;  // PlainTable reads files without mmap too
  plain_pread.mmap_reads = false;
  ExpectNewestRowsRead(plain, plain_pread);
}

// A checkpoint of a PlainTable store opens as one and holds every row as last written, and
// RocksDB holds the PlainTable hash index in memory (TableReaderBytes), not in its block cache.
TEST(RowStoreTest, PlainTableRowsRoundTripThroughACheckpoint) {
  const std::string dir = MakeTempDir("row-store-plain");
  ASSERT_FALSE(dir.empty());
  RowStoreOptions options;
  options.path = dir + "/db";
  options.plain_table = true;
  constexpr uint64_t kKeys = 5000;
  std::map<uint64_t, std::string> expected;
  {
    absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {"t"});
    ASSERT_TRUE(store.ok()) << store.status();
    for (int round = 0; round < 2; ++round) {  // the second round overwrites every other row
      RowStore::Batch batch = (*store)->NewBatch();
      for (uint64_t key = 1 + round; key <= kKeys; key += 1 + round) {
        expected[key * 7919] = Record(key, round);
        batch.PutRow(0, key * 7919, expected[key * 7919].data(), expected[key * 7919].size());
      }
      ASSERT_TRUE((*store)->Write(batch).ok());
      ASSERT_TRUE((*store)->Checkpoint(dir + "/flush-" + std::to_string(round)).ok());
    }
    EXPECT_GT((*store)->TableReaderBytes(), kKeys * 4);  // a 4-byte bucket per key at least
    ASSERT_TRUE((*store)->Checkpoint(dir + "/ckpt").ok());
  }
  std::filesystem::remove_all(options.path);  // the checkpoint must stand alone
  options.path = dir + "/ckpt";
  absl::StatusOr<std::unique_ptr<RowStore>> restored = RowStore::Open(options, {"t"});
  ASSERT_TRUE(restored.ok()) << restored.status();
  std::vector<uint64_t> keys;
  for (const auto& [key, record] : expected) keys.push_back(key);
  std::vector<rocksdb::PinnableSlice> records;
  std::vector<bool> found;
  ASSERT_TRUE((*restored)->MultiGet(0, keys, &records, &found, nullptr).ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(found[i]) << "key " << keys[i];
    ASSERT_EQ(records[i].ToString(), expected[keys[i]]) << "key " << keys[i];
  }
  records.clear();
  ExpectScanReads(**restored, expected);
  restored->reset();
  std::filesystem::remove_all(dir);
}

// Open refuses `options` with InvalidArgument naming the store's path.
void ExpectOpenRefused(RowStoreOptions options) {
  const std::string dir = MakeTempDir("row-store-refused");
  ASSERT_FALSE(dir.empty());
  options.path = dir + "/db";
  absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {"t"});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), testing::HasSubstr(options.path));
  std::filesystem::remove_all(dir);
}

TEST(RowStoreTest, AHashIndexPrefixLongerThanTheKeyIsRefused) {
  RowStoreOptions options;
  options.hash_index_prefix_bytes = 9;
  ExpectOpenRefused(options);
}

// A store of PlainTable files opened without the option is refused with an error naming the
// path, never read as if it were empty.
TEST(RowStoreTest, PlainTableFilesOpenedWithoutTheOptionAreAnErrorNamingThePath) {
  const std::string dir = MakeTempDir("row-store-plain-reopen");
  ASSERT_FALSE(dir.empty());
  RowStoreOptions options;
  options.path = dir + "/db";
  options.plain_table = true;
  {
    absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {"t"});
    ASSERT_TRUE(store.ok()) << store.status();
    RowStore::Batch batch = (*store)->NewBatch();
    batch.PutRow(0, 42, Record(42, 0).data(), Record(42, 0).size());
    ASSERT_TRUE((*store)->Write(batch).ok());
  }  // closing flushes the row into a PlainTable file
  options.plain_table = false;
  absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {"t"});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), testing::HasSubstr(options.path));
  std::filesystem::remove_all(dir);
}

TEST(RowStoreTest, PlainTableWithAHashIndexIsRefused) {
  RowStoreOptions options;
  options.plain_table = true;
  options.hash_index_prefix_bytes = 8;
  ExpectOpenRefused(options);
}

TEST(RowStoreTest, PlainTableWithAMergeOperatorIsRefused) {
  class AppendOperator : public rocksdb::AssociativeMergeOperator {
   public:
    bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
               std::string* merged, rocksdb::Logger*) const override {
      *merged = (existing != nullptr ? existing->ToString() : "") + value.ToString();
      return true;
    }
    const char* Name() const override { return "AppendOperator"; }
  };
  RowStoreOptions options;
  options.plain_table = true;
  options.merge_operators["t"] = std::make_shared<AppendOperator>();
  ExpectOpenRefused(options);
}

TEST(RowStoreTest, TooFewSortedRunsBeforeCompactionIsRefused) {
  RowStoreOptions options;
  options.sorted_runs_before_compaction = 1;
  ExpectOpenRefused(options);
}

}  // namespace
}  // namespace granary
