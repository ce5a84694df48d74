#include "ps/embedding_table.h"

#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/feature_key.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ps/initializer.h"
#include "ps/row_cache.h"
#include "tests/testing/faulty_file_system.h"
#include "tests/testing/sanitizer.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

std::string NewTempDir() {
  std::string dir = MakeTempDir("embedding-table");
  EXPECT_FALSE(dir.empty());
  return dir;
}

proto::TableConfig SgdTable(const std::string& name, int dim, float lr) {
  proto::TableConfig config;
  config.set_name(name);
  config.set_dim(dim);
  config.mutable_optimizer()->mutable_sgd()->set_learning_rate(lr);
  return config;
}

std::vector<uint64_t> Keys(int n, const char* field) {
  std::vector<uint64_t> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = FeatureKey(field, std::to_string(i));
  return keys;
}

class EmbeddingTableTest : public ::testing::Test {
 protected:
  void TearDown() override {
    table_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // With `merge_pushes`, the store holds the table's merge operator, so pushes to rows a full
  // cache does not hold are written as merge operands.
  void Open(const proto::TableConfig& config, size_t cache_bytes, rocksdb::Env* env = nullptr,
            bool merge_pushes = false) {
    table_.reset();
    store_.reset();
    RowStoreOptions options = store_options_;
    options.path = dir_;
    options.env = env;
    if (merge_pushes) {
      absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> merge_operator =
          EmbeddingTable::NewMergeOperator(config);
      ASSERT_TRUE(merge_operator.ok()) << merge_operator.status();
      options.merge_operators[config.name()] = *merge_operator;
    }
    absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {config.name()});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    absl::StatusOr<std::unique_ptr<EmbeddingTable>> table =
        EmbeddingTable::Create(config, store_.get(), 0, cache_bytes, &stamp_);
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *std::move(table);
  }

  std::vector<uint64_t> StoreRowsAndReopen(const proto::TableConfig& config);
  // Pushes to rows a full cache does not hold, merged by RocksDB, against a table that caches
  // every row (see the tests that call it).
  void ExpectMergedPushesLeaveTheRowsCachedPushesLeave();

  size_t StoredRows() {
    size_t rows = 0;
    EXPECT_TRUE(table_
                    ->ForEachStoredRow([&](uint64_t, const char*) {
                      ++rows;
                      return absl::OkStatus();
                    })
                    .ok());
    return rows;
  }

  std::string dir_ = NewTempDir();
  // The options of the store Open() opens (path and env aside).
  RowStoreOptions store_options_;
  UpdateStamp stamp_;
  // Declared before the store: RocksDB's background threads use it until the store closes.
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<RowStore> store_;
  std::unique_ptr<EmbeddingTable> table_;
};

TEST_F(EmbeddingTableTest, TableTenTimesLargerThanTheCacheTrainsExactly) {
  constexpr int kDim = 4, kKeys = 20000, kRounds = 3;
  proto::TableConfig config = SgdTable("big", kDim, 1.0f);
  // Rows of 24 + 16 bytes: a 200 KB cache holds about 2,000 of the 20,000 rows.
  const size_t cache_bytes = 200 << 10;
  Open(config, cache_bytes);
  std::vector<uint64_t> keys = Keys(kKeys, "big");
  std::mt19937 rng(7);
  std::vector<double> expected(kKeys * kDim, 0.0);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<int> order(kKeys);
    for (int i = 0; i < kKeys; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    // Batches of 500 random keys, as workers would push them.
    for (int begin = 0; begin < kKeys; begin += 500) {
      std::vector<uint64_t> batch;
      std::vector<float> grads;
      for (int j = begin; j < begin + 500; ++j) {
        int i = order[j];
        batch.push_back(keys[i]);
        for (int d = 0; d < kDim; ++d) {
          float g = static_cast<float>((i + d + round) % 5);
          grads.push_back(g);
          expected[i * kDim + d] -= g;
        }
      }
      ASSERT_TRUE(table_->Push(batch, grads.data()).ok());
    }
  }
  CacheStats stats = table_->stats();
  EXPECT_LE(stats.memory_bytes, cache_bytes);
  EXPECT_LT(stats.cached_rows, static_cast<uint64_t>(kKeys / 5));
  EXPECT_GT(stats.rows_written, static_cast<uint64_t>(kKeys));  // evictions wrote back
  std::vector<float> values(kKeys * kDim);
  ASSERT_TRUE(table_->Pull(keys, values.data(), /*read_only=*/false).ok());
  for (int i = 0; i < kKeys * kDim; ++i) ASSERT_EQ(values[i], expected[i]) << "at " << i;
  EXPECT_EQ(StoredRows(), static_cast<size_t>(kKeys));
}

proto::TableConfig AdagradTable(const std::string& name, int dim) {
  proto::TableConfig config;
  config.set_name(name);
  config.set_dim(dim);
  config.mutable_initializer()->set_kind(proto::InitializerConfig::UNIFORM);
  config.mutable_initializer()->set_scale(0.5f);
  config.mutable_optimizer()->mutable_adagrad()->set_learning_rate(0.1f);
  return config;
}

// Every stored record of `table` (flushed first), by key.
std::map<uint64_t, std::string> StoredRecords(EmbeddingTable& table) {
  std::map<uint64_t, std::string> records;
  absl::Status status = table.ForEachStoredRow([&](uint64_t key, const char* record) {
    records[key] = std::string(record, table.layout().row_bytes());
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return records;
}

// A table in a store of its own with RowStore's default options and no merge operator: what
// another set-up must match.
struct ReferenceTable {
  ~ReferenceTable() {
    table.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  void Open(const proto::TableConfig& config, size_t cache_bytes) {
    RowStoreOptions options;
    options.path = dir;
    absl::StatusOr<std::unique_ptr<RowStore>> opened = RowStore::Open(options, {config.name()});
    ASSERT_TRUE(opened.ok()) << opened.status();
    store = *std::move(opened);
    absl::StatusOr<std::unique_ptr<EmbeddingTable>> created =
        EmbeddingTable::Create(config, store.get(), 0, cache_bytes, &stamp);
    ASSERT_TRUE(created.ok()) << created.status();
    table = *std::move(created);
  }

  std::string dir = NewTempDir();
  UpdateStamp stamp;
  std::unique_ptr<RowStore> store;
  std::unique_ptr<EmbeddingTable> table;
};

// Pushes to rows a full cache does not hold are written as merge operands, unread; RocksDB's
// merge must leave exactly the row a cached push leaves: values, Adagrad's accumulator and
// every metadata field, with repeated keys applied in order, also after reopening.
void EmbeddingTableTest::ExpectMergedPushesLeaveTheRowsCachedPushesLeave() {
  constexpr int kDim = 4, kKeys = 2000, kBatches = 30, kBatchDraws = 300;
  const proto::TableConfig config = AdagradTable("merged", kDim);
  // Reference: the same table with room for every row, in a store without the operator.
  ReferenceTable reference;
  reference.Open(config, 16 << 20);
  if (HasFatalFailure()) return;
  // About 100 of the 2,000 rows fit the cache: most pushes are merged.
  Open(config, 16 << 10, nullptr, /*merge_pushes=*/true);

  std::vector<uint64_t> keys = Keys(kKeys, "merged");
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pick(0, kKeys - 1);
  std::uniform_real_distribution<float> gradient(-1, 1);
  for (int b = 0; b < kBatches; ++b) {
    for (UpdateStamp* stamp : {&stamp_, &reference.stamp}) {
      stamp->day = 1 + b / 10;
      stamp->version = 100 + b;
    }
    std::vector<uint64_t> batch;  // unsorted, with repeats
    std::vector<float> grads;
    for (int i = 0; i < kBatchDraws; ++i) {
      batch.push_back(keys[pick(rng)]);
      for (int d = 0; d < kDim; ++d) grads.push_back(gradient(rng));
    }
    ASSERT_TRUE(table_->Push(batch, grads.data()).ok());
    ASSERT_TRUE(reference.table->Push(batch, grads.data()).ok());
    if (b % 10 == 9) {  // pulls in between cache merged rows, which pushes then hit
      std::vector<float> values(batch.size() * kDim);
      ASSERT_TRUE(table_->Pull(batch, values.data(), /*read_only=*/false).ok());
    }
  }
  CacheStats stats = table_->stats();
  EXPECT_GT(stats.pushes_merged, static_cast<uint64_t>(kBatches * kBatchDraws / 2));
  EXPECT_GT(stats.hits, 0u);
  // The logs (64 pushes each at this budget) filled and were spilled into RocksDB many times.
  EXPECT_GT(stats.spills, 3u);

  std::vector<float> values(kKeys * kDim), expected(kKeys * kDim);
  ASSERT_TRUE(reference.table->Pull(keys, expected.data(), /*read_only=*/true).ok());
  const std::map<uint64_t, std::string> expected_records = StoredRecords(*reference.table);
  for (int reopen = 0; reopen < 2; ++reopen) {
    ASSERT_TRUE(table_->Pull(keys, values.data(), /*read_only=*/true).ok());
    for (int i = 0; i < kKeys * kDim; ++i) ASSERT_EQ(values[i], expected[i]) << "at " << i;
    const std::map<uint64_t, std::string> records = StoredRecords(*table_);
    ASSERT_EQ(records.size(), expected_records.size());
    for (const auto& [key, record] : expected_records) {
      auto it = records.find(key);
      ASSERT_NE(it, records.end()) << "key " << key;
      ASSERT_EQ(it->second, record) << "key " << key;
    }
    Open(config, 16 << 10, nullptr, /*merge_pushes=*/true);
  }
}

TEST_F(EmbeddingTableTest, MergedPushesLeaveTheRowsCachedPushesLeave) {
  ExpectMergedPushesLeaveTheRowsCachedPushesLeave();
}

// The same through hash-indexed files (RowStoreOptions::hash_index_prefix_bytes), with compactions
// after every second spill: misses read merged rows through the hash index and its prefix
// extractor.
TEST_F(EmbeddingTableTest, MergedPushesReadThroughAHashIndexLeaveTheRowsCachedPushesLeave) {
  store_options_.hash_index_prefix_bytes = 2;
  store_options_.sorted_runs_before_compaction = 2;
  ExpectMergedPushesLeaveTheRowsCachedPushesLeave();
}

// A table ten times larger than its cache, in PlainTable files (RowStoreOptions::plain_table,
// which merges no pushes: misses are read), trains exactly as one in block-based files: the
// same pulls, and the same stored records after a reopen.
TEST_F(EmbeddingTableTest, PlainTableRowsTrainLikeBlockBasedRows) {
  constexpr int kDim = 4, kKeys = 4000, kBatches = 40, kBatchDraws = 400;
  const proto::TableConfig config = AdagradTable("plain", kDim);
  ReferenceTable reference;
  reference.Open(config, 48 << 10);  // about 400 of the 4,000 rows fit either cache
  if (HasFatalFailure()) return;
  store_options_.plain_table = true;
  store_options_.sorted_runs_before_compaction = 2;  // compactions of PlainTable files too
  store_options_.memtable_bytes = 256 << 10;         // and many flushes
  Open(config, 48 << 10);
  std::vector<uint64_t> keys = Keys(kKeys, "plain");
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> pick(0, kKeys - 1);
  std::uniform_real_distribution<float> gradient(-1, 1);
  for (int b = 0; b < kBatches; ++b) {
    std::vector<uint64_t> batch;
    std::vector<float> grads;
    for (int i = 0; i < kBatchDraws; ++i) {
      batch.push_back(keys[pick(rng)]);
      for (int d = 0; d < kDim; ++d) grads.push_back(gradient(rng));
    }
    std::vector<float> values(batch.size() * kDim), expected(batch.size() * kDim);
    ASSERT_TRUE(table_->Pull(batch, values.data(), /*read_only=*/false).ok());
    ASSERT_TRUE(reference.table->Pull(batch, expected.data(), /*read_only=*/false).ok());
    ASSERT_EQ(values, expected) << "batch " << b;
    ASSERT_TRUE(table_->Push(batch, grads.data()).ok());
    ASSERT_TRUE(reference.table->Push(batch, grads.data()).ok());
  }
  EXPECT_GT(table_->stats().rows_written, static_cast<uint64_t>(kKeys));  // evicted, reread
  const std::map<uint64_t, std::string> expected_records = StoredRecords(*reference.table);
  ASSERT_EQ(StoredRecords(*table_), expected_records);  // flushes the dirty cached rows
  Open(config, 48 << 10);
  ASSERT_EQ(StoredRecords(*table_), expected_records);
}

// A store holding merge operands opened without the operator cannot fold them: opening it
// fails with an error naming the table and path, never serving a silently stale row.
TEST_F(EmbeddingTableTest, MergedRowsOpenedWithoutTheOperatorAreAnErrorNamingTheTable) {
  const proto::TableConfig config = AdagradTable("emb", 4);
  Open(config, 1 << 10, nullptr, /*merge_pushes=*/true);  // one row per shard
  std::vector<uint64_t> keys = Keys(500, "emb");
  std::vector<float> grads(500 * 4, 1.0f);
  ASSERT_TRUE(table_->Push(keys, grads.data()).ok());
  ASSERT_GT(table_->stats().pushes_merged, 0u);
  ASSERT_TRUE(table_->FlushDirtyRows().ok());  // the logged pushes become merge operands
  table_.reset();
  store_.reset();
  RowStoreOptions options;
  options.path = dir_;
  absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {config.name()});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("table 'emb'"), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find(dir_), std::string::npos) << store.status();
}

// A merge onto a stored record of the wrong size fails the read with an error naming the
// table, the key and the path.
TEST_F(EmbeddingTableTest, MergeOntoACorruptRecordIsAnErrorNamingTableKeyAndPath) {
  const proto::TableConfig config = AdagradTable("emb", 4);
  Open(config, 1 << 10, nullptr, /*merge_pushes=*/true);
  std::vector<uint64_t> keys = Keys(500, "emb");
  RowStore::Batch batch = store_->NewBatch();
  batch.PutRow(0, keys[0], "short", 5);
  ASSERT_TRUE(store_->Write(batch).ok());
  Open(config, 1 << 10, nullptr, /*merge_pushes=*/true);
  std::vector<float> grads(500 * 4, 1.0f);
  absl::Status pushed = table_->Push(keys, grads.data());
  ASSERT_TRUE(pushed.ok()) << pushed;
  ASSERT_GT(table_->stats().pushes_merged, 0u);
  ASSERT_TRUE(table_->FlushDirtyRows().ok());  // RocksDB, not the PushLog, folds them now
  std::vector<float> values(4);
  absl::Status status = table_->Pull(absl::MakeConstSpan(keys.data(), 1), values.data(), true);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("table 'emb'"), std::string::npos) << status;
  EXPECT_NE(status.message().find(absl::StrCat(keys[0])), std::string::npos) << status;
  EXPECT_NE(status.message().find(dir_), std::string::npos) << status;
}

// A full cache takes a pulled miss only on its second recent miss; the first is read around
// the cache, with the same values.
TEST_F(EmbeddingTableTest, FullCacheCachesAPulledRowOnItsSecondMiss) {
  const proto::TableConfig config = AdagradTable("t", 4);
  Open(config, 64 << 10, nullptr, /*merge_pushes=*/true);
  // Fill the cache with trained rows (and write most to RocksDB as operands).
  std::vector<uint64_t> old_keys = Keys(3000, "old");
  std::vector<float> grads(3000 * 4, 1.0f);
  std::vector<float> values(3000 * 4);
  ASSERT_TRUE(table_->Pull(old_keys, values.data(), false).ok());
  ASSERT_TRUE(table_->Push(old_keys, grads.data()).ok());
  const CacheStats full = table_->stats();
  ASSERT_GT(full.cached_rows, 0u);
  // Only rows of shards with room were loaded; the rest were read around, then merged.
  ASSERT_LT(full.cached_rows, 3000u);

  // A key pulled once does not displace a cached row...
  std::vector<uint64_t> fresh = {FeatureKey("fresh", "1")};
  std::vector<float> first(4), second(4), expected(4);
  InitializeRow(config.initializer(), fresh[0], 4, expected.data());
  ASSERT_TRUE(table_->Pull(fresh, first.data(), false).ok());
  EXPECT_EQ(first, expected);
  CacheStats after_first = table_->stats();
  EXPECT_EQ(after_first.misses, full.misses + 1);
  // ...its second pull caches it (evicting a row), and the third hits.
  ASSERT_TRUE(table_->Pull(fresh, second.data(), false).ok());
  EXPECT_EQ(second, expected);
  EXPECT_EQ(table_->stats().misses, full.misses + 2);
  ASSERT_TRUE(table_->Pull(fresh, second.data(), false).ok());
  EXPECT_EQ(table_->stats().hits, after_first.hits + 1);
  EXPECT_EQ(second, expected);
  // Rows read around the cache hold their merged pushes.
  ASSERT_TRUE(table_->Pull(old_keys, values.data(), false).ok());
  for (int i = 0; i < 3000 * 4; ++i) {
    float initial[4];
    InitializeRow(config.initializer(), old_keys[i / 4], 4, initial);
    ASSERT_NE(values[i], initial[i % 4]) << "row " << i / 4 << " lost its push";
  }
}

TEST_F(EmbeddingTableTest, PullGivesInitialRowsAndPushAppliesRepeatedKeysInOrder) {
  proto::TableConfig config = SgdTable("t", 3, 0.5f);
  config.mutable_initializer()->set_kind(proto::InitializerConfig::UNIFORM);
  config.mutable_initializer()->set_scale(1.0f);
  Open(config, 1 << 20);
  std::vector<uint64_t> keys = {9, 1, 9};
  std::vector<float> values(9);
  ASSERT_TRUE(table_->Pull(keys, values.data(), false).ok());
  float initial9[3], initial1[3];
  InitializeRow(config.initializer(), 9, 3, initial9);
  InitializeRow(config.initializer(), 1, 3, initial1);
  for (int d = 0; d < 3; ++d) {
    EXPECT_EQ(values[d], initial9[d]);
    EXPECT_EQ(values[3 + d], initial1[d]);
    EXPECT_EQ(values[6 + d], initial9[d]);
  }
  std::vector<float> grads = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  ASSERT_TRUE(table_->Push(keys, grads.data()).ok());
  ASSERT_TRUE(table_->Pull(keys, values.data(), false).ok());
  for (int d = 0; d < 3; ++d) {
    EXPECT_FLOAT_EQ(values[d], initial9[d] - 0.5f * (grads[d] + grads[6 + d]));
    EXPECT_FLOAT_EQ(values[3 + d], initial1[d] - 0.5f * grads[3 + d]);
  }
  EXPECT_EQ(StoredRows(), 2u);
}

// Adagrad's accumulator overflows on a gradient of 3e38: whether the row is cached or its
// pushes are merged in RocksDB, the row keeps its values and no stored float is non-finite.
TEST_F(EmbeddingTableTest, APushThatWouldOverflowARowLeavesItFinite) {
  constexpr int kDim = 2, kKeys = 500;
  const proto::TableConfig config = AdagradTable("overflow", kDim);
  for (bool merge_pushes : {false, true}) {
    // Room for every row, or (merging) for about 1 in 20 of them.
    Open(config, merge_pushes ? 16 << 10 : 16 << 20, nullptr, merge_pushes);
    std::vector<uint64_t> keys = Keys(kKeys, merge_pushes ? "merged" : "cached");
    std::vector<float> grads;
    for (int i = 0; i < kKeys; ++i) {
      grads.push_back(i % 2 == 0 ? 3e38f : 0.5f);
      grads.push_back(1.0f);
    }
    ASSERT_TRUE(table_->Push(keys, grads.data()).ok());
    std::vector<float> values(kKeys * kDim), initial(kDim);
    ASSERT_TRUE(table_->Pull(keys, values.data(), /*read_only=*/true).ok());
    for (int i = 0; i < kKeys; ++i) {
      InitializeRow(config.initializer(), keys[i], kDim, initial.data());
      for (int d = 0; d < kDim; ++d) {
        if (i % 2 == 0) {
          ASSERT_EQ(values[i * kDim + d], initial[d]) << "key " << i;
        } else {
          ASSERT_NE(values[i * kDim + d], initial[d]) << "key " << i;
        }
      }
    }
    if (!merge_pushes) {
      EXPECT_EQ(table_->stats().updates_refused, static_cast<uint64_t>(kKeys / 2));
    }
    size_t stored = 0;
    ASSERT_TRUE(table_
                    ->ForEachStoredRow([&](uint64_t key, const char* record) {
                      ++stored;
                      const float* floats = table_->layout().values(record);
                      for (int f = 0; f < kDim * (1 + table_->layout().num_slots()); ++f) {
                        if (!std::isfinite(floats[f])) {
                          return absl::InternalError(absl::StrCat("key ", key, " float ", f));
                        }
                      }
                      return absl::OkStatus();
                    })
                    .ok());
    EXPECT_EQ(stored, static_cast<size_t>(merge_pushes ? 2 * kKeys : kKeys));  // both passes'
  }
}

// Clipping (TableConfig.clip_gradient_abs) applies to every push of the table.
TEST_F(EmbeddingTableTest, ClippedTableClampsEachGradientElement) {
  proto::TableConfig config = SgdTable("clipped", 2, 1.0f);
  config.set_clip_gradient_abs(0.5f);
  Open(config, 1 << 20);
  const std::vector<uint64_t> keys = {7};
  const std::vector<float> grads = {5.0f, -0.25f};
  ASSERT_TRUE(table_->Push(keys, grads.data()).ok());
  std::vector<float> values(2), initial(2);
  ASSERT_TRUE(table_->Pull(keys, values.data(), /*read_only=*/true).ok());
  InitializeRow(config.initializer(), 7, 2, initial.data());
  EXPECT_EQ(values[0], initial[0] - 0.5f);
  EXPECT_EQ(values[1], initial[1] + 0.25f);
}

// L2 (TableConfig.l2) is applied by the optimizer on push, to the pushed rows only, and is no
// state of its own: a table restored from a checkpoint continues exactly as one that was not.
TEST_F(EmbeddingTableTest, L2ShrinksOnlyPushedRowsAndSurvivesACheckpointUnchanged) {
  proto::TableConfig config;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "name: 'l2' dim: 2 l2: 0.01 initializer { kind: UNIFORM scale: 0.5 seed: 3 } "
      "optimizer { adam { learning_rate: 0.01 } }",
      &config));
  Open(config, 1 << 20);
  const std::vector<uint64_t> pushed = {7}, other = {8};
  const std::vector<float> grads = {0.25f, -0.5f};
  ASSERT_TRUE(table_->Pull(other, std::vector<float>(2).data(), /*read_only=*/false).ok());
  ASSERT_TRUE(table_->Push(pushed, grads.data()).ok());
  ASSERT_TRUE(table_->FlushDirtyRows().ok());
  const std::string checkpoint = dir_ + "-checkpoint";
  ASSERT_TRUE(store_->Checkpoint(checkpoint).ok());
  ASSERT_TRUE(table_->Push(pushed, grads.data()).ok());
  std::vector<float> uninterrupted(2), untouched(2), initial(2);
  ASSERT_TRUE(table_->Pull(pushed, uninterrupted.data(), /*read_only=*/true).ok());
  ASSERT_TRUE(table_->Pull(other, untouched.data(), /*read_only=*/true).ok());
  InitializeRow(config.initializer(), 8, 2, initial.data());
  EXPECT_EQ(untouched, initial);

  table_.reset();
  store_.reset();
  std::filesystem::remove_all(dir_);
  std::filesystem::rename(checkpoint, dir_);
  Open(config, 1 << 20);
  ASSERT_TRUE(table_->Push(pushed, grads.data()).ok());
  std::vector<float> restored(2);
  ASSERT_TRUE(table_->Pull(pushed, restored.data(), /*read_only=*/true).ok());
  EXPECT_EQ(restored, uninterrupted);
  ASSERT_TRUE(table_->Pull(other, untouched.data(), /*read_only=*/true).ok());
  EXPECT_EQ(untouched, initial);
}

class ConcurrentPushTest : public EmbeddingTableTest, public ::testing::WithParamInterface<bool> {};

// With merge_pushes, most pushes are merge operands written while their shards stay locked.
TEST_P(ConcurrentPushTest, ConcurrentPushesAreAllApplied) {
  // Smaller than the rows: evictions (or merges) race too.
  Open(SgdTable("t", 4, 1.0f), 256 << 10, nullptr, /*merge_pushes=*/GetParam());
  constexpr int kThreads = 4, kRounds = 50, kKeys = 5000;
  std::vector<uint64_t> keys = Keys(kKeys, "concurrent");
  std::vector<float> ones(kKeys * 4, 1.0f);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) failures += !table_->Push(keys, ones.data()).ok();
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<float> values(kKeys * 4);
  ASSERT_TRUE(table_->Pull(keys, values.data(), false).ok());
  for (float v : values) ASSERT_EQ(v, -static_cast<float>(kThreads * kRounds));
  if (GetParam()) {
    EXPECT_GT(table_->stats().pushes_merged, 0u);
  }
}

// A hot key (a bias row, a popular item) is in every request of both threads, beside keys of
// each thread's own: every push of it is applied exactly once, in the cache or (merged) in the
// push logs, while the two requests take the shards in whatever order they find them free.
TEST_P(ConcurrentPushTest, TwoThreadsPushingOneHotKeyLoseNoUpdate) {
  proto::TableConfig config = SgdTable("t", 2, 1.0f);
  config.mutable_initializer()->set_kind(proto::InitializerConfig::ZEROS);
  Open(config, GetParam() ? 64 << 10 : 16 << 20, nullptr, /*merge_pushes=*/GetParam());
  constexpr int kThreads = 2, kRounds = 300, kOwnKeys = 400;
  const uint64_t hot_key = FeatureKey("hot", "bias");
  std::vector<std::vector<uint64_t>> batches(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    batches[t] = Keys(kOwnKeys, t == 0 ? "hot-a" : "hot-b");
    batches[t].push_back(hot_key);
    std::sort(batches[t].begin(), batches[t].end());  // as KVWorker sends them
  }
  const std::vector<float> ones((kOwnKeys + 1) * 2, 1.0f);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) failures += !table_->Push(batches[t], ones.data()).ok();
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    std::vector<float> values(batches[t].size() * 2);
    ASSERT_TRUE(table_->Pull(batches[t], values.data(), /*read_only=*/true).ok());
    for (size_t i = 0; i < batches[t].size(); ++i) {
      const float expected =
          -static_cast<float>(batches[t][i] == hot_key ? kThreads * kRounds : kRounds);
      ASSERT_EQ(values[2 * i], expected) << "key " << batches[t][i] << " of thread " << t;
      ASSERT_EQ(values[2 * i + 1], expected) << "key " << batches[t][i] << " of thread " << t;
    }
  }
  if (GetParam()) {
    EXPECT_GT(table_->stats().pushes_merged, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(CachedOrMerged, ConcurrentPushTest, ::testing::Bool());

// Pulls racing pushes and spills never see a push twice (in RocksDB and in a sealed log) or
// lose one: with SGD at rate 1 and gradients of 1, a row's value is minus the pushes applied,
// which only grows, and ends exact.
TEST_F(EmbeddingTableTest, PullsRacingSpillsSeeEveryPushOnce) {
  Open(SgdTable("t", 4, 1.0f), 64 << 10, nullptr, /*merge_pushes=*/true);
  constexpr int kPushers = 2, kRounds = 15, kKeys = 3000;
  std::vector<uint64_t> keys = Keys(kKeys, "racing");
  std::vector<float> ones(kKeys * 4, 1.0f);
  std::atomic<int> pushers_done{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kPushers; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) failures += !table_->Push(keys, ones.data()).ok();
      ++pushers_done;
    });
  }
  std::vector<float> seen(kKeys, 0.0f);  // the most negative value seen per key so far
  int pulls = 0;
  bool ordered = true;
  while (pushers_done.load() < kPushers && pulls < 10000) {
    std::vector<float> values(kKeys * 4);
    bool read_only = pulls % 2 == 0;  // read-only pulls never cache; others may
    ASSERT_TRUE(table_->Pull(keys, values.data(), read_only).ok());
    for (int k = 0; k < kKeys; ++k) {
      const float v = values[k * 4];
      ASSERT_GE(v, -static_cast<float>(kPushers * kRounds)) << "key " << k << ": a push twice";
      ASSERT_EQ(v, std::floor(v)) << "key " << k;
      ordered &= v <= seen[k];
      seen[k] = std::min(seen[k], v);
    }
    ++pulls;
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(ordered) << "a row went back to fewer pushes";
  EXPECT_GT(table_->stats().spills, 0u);
  std::vector<float> values(kKeys * 4);
  ASSERT_TRUE(table_->Pull(keys, values.data(), false).ok());
  for (float v : values) ASSERT_EQ(v, -static_cast<float>(kPushers * kRounds));
  ASSERT_TRUE(table_->FlushDirtyRows().ok());
  EXPECT_EQ(table_->stats().logged_pushes, 0u);
  ASSERT_TRUE(table_->Pull(keys, values.data(), true).ok());
  for (float v : values) ASSERT_EQ(v, -static_cast<float>(kPushers * kRounds));
}

// A spill that cannot write its file (disk full) fails the next push loudly, naming the table
// and path; the logged pushes stay logged, and once space is back they all reach RocksDB.
TEST_F(EmbeddingTableTest, SpillOntoAFullDiskFailsLoudlyAndLosesNoLoggedPush) {
  auto fs = std::make_shared<FaultyFileSystem>();
  env_ = NewEnvWithFileSystem(fs);
  Open(SgdTable("emb", 4, 1.0f), 32 << 10, env_.get(), /*merge_pushes=*/true);
  constexpr int kKeys = 3000;
  std::vector<uint64_t> keys = Keys(kKeys, "spill");
  std::vector<float> ones(kKeys * 4, 1.0f);
  ASSERT_TRUE(table_->Push(keys, ones.data()).ok());
  ASSERT_TRUE(table_->FlushDirtyRows().ok());
  int applied = 1;  // pushes of every key that returned OK

  fs->set_disk_full(true);
  absl::Status status;
  for (int round = 0; round < 20 && status.ok(); ++round) {
    status = table_->Push(keys, ones.data());
    if (status.ok()) ++applied;
  }
  ASSERT_FALSE(status.ok()) << "20 rounds of pushes never needed the disk";
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find("table 'emb'"), std::string::npos) << status;
  EXPECT_NE(status.message().find(dir_), std::string::npos) << status;

  fs->set_disk_full(false);
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  do {
    status = table_->FlushDirtyRows();
  } while (!status.ok() && absl::Now() < deadline);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(table_->stats().logged_pushes, 0u);
  // Every row holds the pushes that returned OK, and perhaps the failed one (which may have
  // reached some rows before it found a log full); never fewer, never a push twice.
  std::vector<float> values(kKeys * 4);
  ASSERT_TRUE(table_->Pull(keys, values.data(), true).ok());
  for (float v : values) {
    ASSERT_TRUE(v == -static_cast<float>(applied) || v == -static_cast<float>(applied + 1))
        << v << " after " << applied << " pushes";
  }
}

// Resident anonymous memory of this process, in bytes: what it allocated. Not the pages of
// files it maps (RowStoreOptions::mmap_reads), which are the kernel's page cache.
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0, file_backed = 0;
  statm >> pages >> resident >> file_backed;
  return (resident - file_backed) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

class MemoryBudgetTest : public EmbeddingTableTest, public ::testing::WithParamInterface<bool> {};

// With merge_pushes, pushes to uncached rows are merge operands in RocksDB's memtables, which
// stay within their bound.
TEST_P(MemoryBudgetTest, MemoryStaysUnderBudgetWhileTrainingATableTenTimesLarger) {
  GRANARY_SKIP_UNDER_SANITIZER(
      "the budget is on resident memory, which ASan's shadow memory and quarantine of freed "
      "blocks inflate by more than the budget");
  constexpr size_t kCacheBytes = 8 << 20;
  constexpr size_t kRocksDbBytes = 8 << 20;  // memtables + block cache below
  proto::TableConfig config;
  config.set_name("big");
  config.set_dim(16);
  config.mutable_optimizer()->mutable_adagrad()->set_learning_rate(0.1f);
  RowStoreOptions store_options;
  store_options.path = dir_;
  store_options.memtable_bytes = kRocksDbBytes / 2;
  store_options.block_cache_bytes = kRocksDbBytes / 2;
  if (GetParam()) {
    absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> merge_operator =
        EmbeddingTable::NewMergeOperator(config);
    ASSERT_TRUE(merge_operator.ok());
    store_options.merge_operators["big"] = *merge_operator;
  }
  absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(store_options, {"big"});
  ASSERT_TRUE(store.ok());
  store_ = *std::move(store);
  malloc_trim(0);  // return what earlier tests freed, so that it does not hide growth
  const size_t before = ResidentBytes();
  absl::StatusOr<std::unique_ptr<EmbeddingTable>> table =
      EmbeddingTable::Create(config, store_.get(), 0, kCacheBytes, &stamp_);
  ASSERT_TRUE(table.ok());
  table_ = *std::move(table);
  // 152-byte records: 8 MB caches ~40 K rows (with overhead); the table gets 10x as many.
  const size_t rows =
      10 * kCacheBytes / (table_->layout().row_bytes() + RowCache::kMaxOverheadBytesPerRow);
  constexpr size_t kBatch = 4096;
  std::vector<uint64_t> batch;
  std::vector<float> grads(kBatch * 16, 1.0f);
  for (int round = 0; round < 2; ++round) {
    for (size_t begin = 0; begin < rows; begin += kBatch) {
      batch.clear();
      for (size_t i = begin; i < std::min(rows, begin + kBatch); ++i) {
        batch.push_back(FeatureKey("rss", std::to_string(i)));
      }
      ASSERT_TRUE(table_->Push(batch, grads.data()).ok());
    }
  }
  // Signed: what is still freed meanwhile can make it negative.
  const int64_t growth = static_cast<int64_t>(ResidentBytes()) - static_cast<int64_t>(before);
  // Budget: the cache, RocksDB's memtables and block cache, plus 10 MB for RocksDB's index
  // and filter blocks, thread stacks and allocator slack. Unbounded, the rows alone would
  // take over 60 MB.
  EXPECT_LT(growth, static_cast<int64_t>(kCacheBytes + kRocksDbBytes + (10 << 20)))
      << "grew " << (growth >> 20) << " MB";
  EXPECT_LE(table_->stats().memory_bytes, kCacheBytes);
  // And the rows are right: Adagrad after two gradients of 1 from 0 with accumulator 0.1.
  std::vector<uint64_t> probe = {FeatureKey("rss", "0"),
                                 FeatureKey("rss", std::to_string(rows / 2))};
  std::vector<float> values(32);
  ASSERT_TRUE(table_->Pull(probe, values.data(), false).ok());
  float expected = -0.1f / (std::sqrt(1.1f) + 1e-8f);
  expected -= 0.1f / (std::sqrt(2.1f) + 1e-8f);
  for (float v : values) EXPECT_NEAR(v, expected, 1e-6f);
  EXPECT_EQ(table_->stats().pushes_merged > 0, GetParam());
}

INSTANTIATE_TEST_SUITE_P(CachedOrMerged, MemoryBudgetTest, ::testing::Bool());

// Pushes a gradient of 2 to each of 100 keys of an SGD table of dim 2 (rate 0.5), flushes and
// reopens it: an empty cache in front of 100 stored rows of -1. Returns the keys.
std::vector<uint64_t> EmbeddingTableTest::StoreRowsAndReopen(const proto::TableConfig& config) {
  Open(config, 1 << 20);
  std::vector<uint64_t> keys = Keys(100, "t");
  std::vector<float> grads(200, 2.0f);
  EXPECT_TRUE(table_->Push(keys, grads.data()).ok());
  EXPECT_TRUE(table_->FlushDirtyRows().ok());
  Open(config, 1 << 20);
  return keys;
}

TEST_F(EmbeddingTableTest, RowsSurviveReopening) {
  proto::TableConfig config = SgdTable("t", 2, 0.5f);
  std::vector<uint64_t> keys = StoreRowsAndReopen(config);
  std::vector<float> values(200);
  ASSERT_TRUE(table_->Pull(keys, values.data(), false).ok());
  for (float v : values) EXPECT_EQ(v, -1.0f);
}

// CacheStats::miss_nanos times the training misses' path only: evaluation pulls and hits add
// nothing to it, misses read from RocksDB do.
TEST_F(EmbeddingTableTest, TrainingMissesAreTimedAndHitsAndEvaluationPullsAreNot) {
  proto::TableConfig config = SgdTable("t", 2, 0.5f);
  std::vector<uint64_t> keys = StoreRowsAndReopen(config);
  std::vector<float> values(200);
  ASSERT_TRUE(table_->Pull(keys, values.data(), /*read_only=*/true).ok());
  EXPECT_EQ(table_->stats().misses, 0u);
  EXPECT_EQ(table_->stats().miss_nanos, 0u);
  EXPECT_EQ(table_->stats().miss_cpu_nanos, 0u);
  ASSERT_TRUE(table_->Pull(keys, values.data(), /*read_only=*/false).ok());
  for (float v : values) ASSERT_EQ(v, -1.0f);
  const CacheStats missed = table_->stats();
  EXPECT_EQ(missed.misses, 100u);
  EXPECT_GT(missed.miss_nanos, 0u);
  EXPECT_GT(missed.miss_cpu_nanos, 0u);
  ASSERT_TRUE(table_->Pull(keys, values.data(), /*read_only=*/false).ok());
  EXPECT_EQ(table_->stats().hits, missed.hits + 100);
  EXPECT_EQ(table_->stats().miss_nanos, missed.miss_nanos);
  EXPECT_EQ(table_->stats().miss_cpu_nanos, missed.miss_cpu_nanos);
}

TEST_F(EmbeddingTableTest, ReadOnlyPullsCreateCountAndStampNothing) {
  proto::TableConfig config = SgdTable("t", 3, 1.0f);
  config.mutable_initializer()->set_kind(proto::InitializerConfig::UNIFORM);
  config.mutable_initializer()->set_scale(0.1f);
  Open(config, 1 << 20);
  std::vector<uint64_t> trained = Keys(10, "trained");
  std::vector<float> grads(30, 1.0f);
  stamp_.day = 3;
  ASSERT_TRUE(table_->Push(trained, grads.data()).ok());
  ASSERT_TRUE(table_->FlushDirtyRows().ok());
  uint64_t cached_before = table_->stats().cached_rows;

  stamp_.day = 9;
  std::vector<uint64_t> fresh = Keys(50, "fresh");
  std::vector<float> values(150);
  ASSERT_TRUE(table_->Pull(fresh, values.data(), /*read_only=*/true).ok());
  for (int i = 0; i < 50; ++i) {  // initial values, computed not stored
    float expected[3];
    InitializeRow(config.initializer(), fresh[i], 3, expected);
    for (int d = 0; d < 3; ++d) EXPECT_EQ(values[i * 3 + d], expected[d]);
  }
  std::vector<float> trained_values(30);
  ASSERT_TRUE(table_->Pull(trained, trained_values.data(), /*read_only=*/true).ok());
  EXPECT_EQ(table_->stats().cached_rows, cached_before);
  EXPECT_EQ(StoredRows(), 10u);
  // Metadata untouched: every stored row still says day 3, one update.
  ASSERT_TRUE(table_
                  ->ForEachStoredRow([&](uint64_t, const char* record) {
                    const RowMeta* meta = table_->layout().meta(record);
                    EXPECT_EQ(meta->last_day, 3u);
                    EXPECT_EQ(meta->update_count, 1u);
                    return absl::OkStatus();
                  })
                  .ok());
}

TEST_F(EmbeddingTableTest, MinCountAdmissionCountsPushesUntilAdmitted) {
  proto::TableConfig config = SgdTable("t", 2, 1.0f);
  config.mutable_admission()->set_min_count(3);
  config.mutable_admission()->set_sketch_width(1024);
  Open(config, 1 << 20);
  std::vector<uint64_t> key = {FeatureKey("f", "rare")};
  std::vector<float> grad = {1.0f, 1.0f};
  std::vector<float> values(2);
  for (int push = 1; push <= 2; ++push) {
    ASSERT_TRUE(table_->Push(key, grad.data()).ok());
    ASSERT_TRUE(table_->Pull(key, values.data(), false).ok());
    EXPECT_EQ(values, (std::vector<float>{0, 0})) << "push " << push << " must only count";
  }
  EXPECT_EQ(StoredRows(), 0u);
  ASSERT_TRUE(table_->Push(key, grad.data()).ok());  // the third push admits and applies
  ASSERT_TRUE(table_->Pull(key, values.data(), false).ok());
  EXPECT_EQ(values, (std::vector<float>{-1, -1}));
  EXPECT_EQ(StoredRows(), 1u);
  EXPECT_EQ(table_->stats().pushes_not_admitted, 2u);
}

TEST_F(EmbeddingTableTest, ProbabilisticAdmissionAdmitsAboutThatFraction) {
  proto::TableConfig config = SgdTable("t", 1, 1.0f);
  config.mutable_admission()->set_admit_probability(0.25f);
  Open(config, 1 << 20);
  std::vector<uint64_t> keys = Keys(4000, "p");
  std::vector<float> grads(4000, 1.0f);
  ASSERT_TRUE(table_->Push(keys, grads.data()).ok());
  size_t admitted = StoredRows();
  EXPECT_GT(admitted, 800u);
  EXPECT_LT(admitted, 1200u);
}

TEST_F(EmbeddingTableTest, ShrinkEvictsByAgeAndDecayedCountWithTombstones) {
  proto::TableConfig config = SgdTable("t", 1, 1.0f);
  config.mutable_eviction()->set_ttl_days(2);
  config.mutable_eviction()->set_show_decay(0.5f);
  config.mutable_eviction()->set_min_decayed_count(1.0f);
  Open(config, 1 << 20);
  std::vector<uint64_t> old_keys = Keys(10, "old"), rare = Keys(5, "rare"), hot = Keys(7, "hot");
  std::vector<float> ones(10, 1.0f);
  stamp_.day = 1;
  ASSERT_TRUE(table_->Push(old_keys, ones.data()).ok());
  stamp_.day = 5;
  ASSERT_TRUE(table_->Push(rare, ones.data()).ok());  // show 1 -> 0.5 after decay: too rare
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(table_->Push(hot, ones.data()).ok());  // 4 -> 2
  absl::StatusOr<ShrinkReport> report = table_->Shrink();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->dropped, 15u);
  EXPECT_EQ(report->kept, 7u);
  EXPECT_EQ(StoredRows(), 7u);
  size_t tombstones = 0;
  std::unique_ptr<rocksdb::Iterator> it = store_->NewTombstoneIterator(0);
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++tombstones;
  EXPECT_EQ(tombstones, 15u);
  // Survivors kept their values and carry the decayed count.
  ASSERT_TRUE(table_
                  ->ForEachStoredRow([&](uint64_t, const char* record) {
                    EXPECT_EQ(table_->layout().meta(record)->show_count, 2.0f);
                    EXPECT_EQ(table_->layout().values(record)[0], -4.0f);
                    return absl::OkStatus();
                  })
                  .ok());
}

TEST_F(EmbeddingTableTest, CorruptStoredRecordIsAnErrorNamingTableKeyAndPath) {
  proto::TableConfig config = SgdTable("emb", 4, 1.0f);
  Open(config, 1 << 20);
  std::vector<uint64_t> key = {0x1234};
  RowStore::Batch batch = store_->NewBatch();
  batch.PutRow(0, key[0], "short", 5);
  ASSERT_TRUE(store_->Write(batch).ok());
  Open(config, 1 << 20);  // reopen: the table now knows rows are stored
  std::vector<float> values(4);
  absl::Status status = table_->Pull(key, values.data(), false);
  ASSERT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find("table 'emb'"), std::string::npos);
  EXPECT_NE(status.message().find("0x0000000000001234"), std::string::npos);
  EXPECT_NE(status.message().find(dir_), std::string::npos);
}

TEST_F(EmbeddingTableTest, FullDiskFailsLoudlyLosesNothingAndHealsWhenFreed) {
  auto fs = std::make_shared<FaultyFileSystem>();
  env_ = NewEnvWithFileSystem(fs);
  proto::TableConfig config = SgdTable("emb", 8, 1.0f);
  Open(config, 64 << 10, env_.get());  // about 500 rows cached
  std::vector<uint64_t> keys = Keys(5000, "disk");
  std::vector<float> grads(5000 * 8, 1.0f);
  ASSERT_TRUE(table_->Push(keys, grads.data()).ok());
  ASSERT_TRUE(table_->FlushDirtyRows().ok());

  fs->set_disk_full(true);
  // Memtables absorb writes until a flush must reach the disk: a checkpoint forces one.
  absl::Status status = store_->Checkpoint(dir_ + "-checkpoint");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find(dir_), std::string::npos) << status;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "-checkpoint"));
  // Pushes that must evict dirty rows now fail, naming the table and path...
  status = table_->Push(keys, grads.data());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("table 'emb'"), std::string::npos) << status;
  EXPECT_NE(status.message().find(dir_), std::string::npos) << status;

  // ...and once space is back, RocksDB's background recovery (it polls free space every few
  // seconds) lets training go on, and no applied update was lost.
  fs->set_disk_full(false);
  std::vector<float> values(5000 * 8);
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  // (A pull alone may succeed earlier: rows it does not cache are only read.)
  do {
    status = table_->Pull(keys, values.data(), false);
    if (status.ok()) status = table_->FlushDirtyRows();
  } while (!status.ok() && absl::Now() < deadline);
  ASSERT_TRUE(status.ok()) << status;
  std::map<float, int> histogram;
  for (float v : values) ++histogram[v];
  // Every row is -1 (first push) or -2 (the failed push reached it before the disk error);
  // never anything else.
  for (const auto& [value, count] : histogram) {
    EXPECT_TRUE(value == -1.0f || value == -2.0f) << value << " x " << count;
  }
  ASSERT_TRUE(table_->FlushDirtyRows().ok());
  ASSERT_TRUE(store_->Checkpoint(dir_ + "-checkpoint").ok());
  std::filesystem::remove_all(dir_ + "-checkpoint");
}

}  // namespace
}  // namespace granary
