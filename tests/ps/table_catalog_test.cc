#include "ps/table_catalog.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "common/delta_file.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

std::vector<uint64_t> Keys(int n, const std::string& field) {
  std::vector<uint64_t> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = FeatureKey(field, std::to_string(i));
  return keys;
}

// Two tables: Adam (2 slots and a step count per row) with eviction, and SGD.
proto::ClusterConfig TwoTables() {
  proto::ClusterConfig config;
  proto::TableConfig* adam = config.add_tables();
  adam->set_name("adam");
  adam->set_dim(4);
  adam->mutable_initializer()->set_kind(proto::InitializerConfig::NORMAL);
  adam->mutable_initializer()->set_scale(0.1f);
  adam->mutable_optimizer()->mutable_adam()->set_learning_rate(0.01f);
  adam->mutable_eviction()->set_ttl_days(1);
  proto::TableConfig* sgd = config.add_tables();
  sgd->set_name("sgd");
  sgd->set_dim(2);
  sgd->mutable_optimizer()->mutable_sgd()->set_learning_rate(0.5f);
  return config;
}

class TableCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("catalog");
    ASSERT_FALSE(root_.empty());
  }
  void TearDown() override {
    catalog_.reset();
    std::filesystem::remove_all(root_);
  }

  void Open(const std::string& restore_from = "", size_t cache_bytes = 64 << 10) {
    catalog_.reset();
    TableCatalogOptions options;
    options.path = root_ + "/server-0";
    options.cache_bytes = cache_bytes;
    options.restore_from = restore_from;
    absl::StatusOr<std::unique_ptr<TableCatalog>> catalog = TableCatalog::Open(config_, options);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = *std::move(catalog);
  }

  // Pushes random gradients for a random subset of `keys` to `table`.
  void Train(const std::string& table, const std::vector<uint64_t>& keys, int batches,
             std::mt19937* rng) {
    EmbeddingTable* t = catalog_->Find(table);
    std::uniform_int_distribution<size_t> pick(0, keys.size() - 1);
    std::normal_distribution<float> grad;
    for (int b = 0; b < batches; ++b) {
      std::vector<uint64_t> batch;
      std::vector<float> grads;
      for (int i = 0; i < 200; ++i) {
        batch.push_back(keys[pick(*rng)]);
        for (int d = 0; d < t->dim(); ++d) grads.push_back(grad(*rng));
      }
      auto cut = catalog_->LockForRequest();
      ASSERT_TRUE(t->Push(batch, grads.data()).ok());
    }
  }

  // Every stored record of every table, byte for byte.
  std::map<std::pair<std::string, uint64_t>, std::string> Snapshot() {
    std::map<std::pair<std::string, uint64_t>, std::string> rows;
    for (const auto& table : catalog_->tables()) {
      size_t bytes = table->layout().row_bytes();
      EXPECT_TRUE(table
                      ->ForEachStoredRow([&](uint64_t key, const char* record) {
                        rows[{table->name(), key}] = std::string(record, bytes);
                        return absl::OkStatus();
                      })
                      .ok());
    }
    return rows;
  }

  proto::ClusterConfig config_ = TwoTables();
  std::string root_;
  std::unique_ptr<TableCatalog> catalog_;
};

TEST_F(TableCatalogTest, RestoredCheckpointEqualsTheStateAtCheckpointTimeInEverySlot) {
  Open();
  std::mt19937 rng(1);
  std::vector<uint64_t> keys = Keys(3000, "k");
  Train("adam", keys, 50, &rng);
  Train("sgd", keys, 50, &rng);
  // The cache holds a few hundred rows per table: most pushes went to RocksDB as merge
  // operands, which the checkpoint must carry and the restore fold.
  EXPECT_GT(catalog_->Find("adam")->stats().pushes_merged, 1000u);
  EXPECT_GT(catalog_->Find("sgd")->stats().pushes_merged, 1000u);
  std::string checkpoint = root_ + "/ckpt-1";
  ASSERT_TRUE(catalog_->Checkpoint(checkpoint).ok());
  auto at_checkpoint = Snapshot();
  uint64_t version_at_checkpoint = catalog_->version();
  ASSERT_GT(at_checkpoint.size(), 1000u);

  Train("adam", keys, 30, &rng);  // later training that the restore must undo
  Train("sgd", keys, 30, &rng);
  EXPECT_NE(Snapshot(), at_checkpoint);

  Open(checkpoint + "/");
  auto restored = Snapshot();
  ASSERT_EQ(restored.size(), at_checkpoint.size());
  EXPECT_TRUE(restored == at_checkpoint);  // values, Adam's m, v and step, metadata
  EXPECT_EQ(catalog_->version(), version_at_checkpoint);
  // No slot holds garbage: every float of every record is finite.
  for (const auto& [where, record] : restored) {
    const EmbeddingTable* table = catalog_->Find(where.first);
    size_t floats = (record.size() - sizeof(RowMeta)) / sizeof(float);
    for (size_t f = 0; f < floats; ++f) {
      float value;
      std::memcpy(&value, record.data() + sizeof(RowMeta) + f * sizeof(float), sizeof(float));
      ASSERT_TRUE(std::isfinite(value)) << table->name();
      ASSERT_LT(std::abs(value), 1e6f);
    }
  }
}

TEST_F(TableCatalogTest, CheckpointIntoAnExistingFolderOrMissingRestoreFails) {
  Open();
  std::filesystem::create_directories(root_ + "/taken");
  absl::Status status = catalog_->Checkpoint(root_ + "/taken");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(root_ + "/taken"), std::string::npos) << status;

  catalog_.reset();
  TableCatalogOptions options;
  options.path = root_ + "/server-0";
  options.restore_from = root_ + "/no-such-checkpoint";
  absl::StatusOr<std::unique_ptr<TableCatalog>> catalog = TableCatalog::Open(config_, options);
  ASSERT_TRUE(absl::IsNotFound(catalog.status())) << catalog.status();
  EXPECT_NE(catalog.status().message().find("no-such-checkpoint"), std::string::npos);
}

// Serving replays base + deltas; the result must equal the live tables row by row.
TEST_F(TableCatalogTest, BasePlusDeltasReplayEqualsTheLiveTables) {
  Open();
  std::mt19937 rng(2);
  std::vector<uint64_t> day1 = Keys(2000, "day1"), day2 = Keys(2000, "day2");
  std::map<std::pair<std::string, uint64_t>, std::vector<float>> serving;
  auto apply = [&](const std::string& path, uint64_t since) {
    absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(path);
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ((*reader)->header().since_version(), since);
    DeltaTableBlock block;
    while (true) {
      absl::StatusOr<bool> more = (*reader)->Next(&block);
      ASSERT_TRUE(more.ok()) << more.status();
      if (!*more) break;
      for (size_t i = 0; i < block.keys.size(); ++i) {
        serving[{block.table, block.keys[i]}].assign(block.values.begin() + i * block.dim,
                                                     block.values.begin() + (i + 1) * block.dim);
      }
      for (uint64_t key : block.tombstones) serving.erase({block.table, key});
    }
  };
  auto live = [&] {
    std::map<std::pair<std::string, uint64_t>, std::vector<float>> rows;
    for (const auto& table : catalog_->tables()) {
      const RowLayout& layout = table->layout();
      EXPECT_TRUE(table
                      ->ForEachStoredRow([&](uint64_t key, const char* record) {
                        const float* values = layout.values(record);
                        rows[{table->name(), key}].assign(values, values + layout.dim());
                        return absl::OkStatus();
                      })
                      .ok());
    }
    return rows;
  };

  catalog_->SetDay(1);
  Train("adam", day1, 40, &rng);
  Train("sgd", day1, 40, &rng);
  absl::StatusOr<DeltaSummary> base = catalog_->ExportDelta(0, root_ + "/base.delta", 0);
  ASSERT_TRUE(base.ok()) << base.status();
  apply(root_ + "/base.delta", 0);
  EXPECT_TRUE(serving == live());

  // Day 3: only new ids are trained; Shrink evicts day-1 rows of the TTL table.
  catalog_->SetDay(3);
  Train("adam", day2, 40, &rng);
  Train("sgd", day2, 10, &rng);
  absl::StatusOr<std::vector<ShrinkReport>> shrink = catalog_->Shrink();
  ASSERT_TRUE(shrink.ok()) << shrink.status();
  EXPECT_GT((*shrink)[0].dropped, 0u);
  EXPECT_EQ((*shrink)[1].dropped, 0u);  // the SGD table has no eviction
  absl::StatusOr<DeltaSummary> delta =
      catalog_->ExportDelta(base->until_version, root_ + "/day3.delta", 0);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_EQ(delta->tombstones, (*shrink)[0].dropped);
  // The delta carries only what changed: far fewer rows than the tables hold.
  EXPECT_LT(delta->rows, live().size());
  apply(root_ + "/day3.delta", base->until_version);
  EXPECT_TRUE(serving == live());

  // An evicted id that comes back is a row again, not a tombstone.
  catalog_->SetDay(4);
  Train("adam", day1, 5, &rng);
  absl::StatusOr<DeltaSummary> day4 =
      catalog_->ExportDelta(delta->until_version, root_ + "/day4.delta", 0);
  ASSERT_TRUE(day4.ok());
  EXPECT_EQ(day4->tombstones, 0u);
  apply(root_ + "/day4.delta", delta->until_version);
  EXPECT_TRUE(serving == live());
}

// A delta file decoded: rows by (table, key), and tombstones.
struct DecodedDelta {
  uint64_t since_version = 0;
  std::map<std::pair<std::string, uint64_t>, std::vector<float>> rows;
  std::set<std::pair<std::string, uint64_t>> tombstones;
};

DecodedDelta Decode(const std::string& path) {
  DecodedDelta delta;
  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return delta;
  delta.since_version = (*reader)->header().since_version();
  DeltaTableBlock block;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    for (size_t i = 0; i < block.keys.size(); ++i) {
      delta.rows[{block.table, block.keys[i]}].assign(block.values.begin() + i * block.dim,
                                                      block.values.begin() + (i + 1) * block.dim);
    }
    for (uint64_t key : block.tombstones) delta.tombstones.insert({block.table, key});
  }
  return delta;
}

// A close that failed after Shrink and export is run again on a store restored from the
// checkpoint taken after them: the re-run decays and evicts nothing more, and its delta again
// holds the whole day, equal to the first.
TEST_F(TableCatalogTest, ARerunOfADayCloseShrinksOnceAndExportsTheWholeDay) {
  config_.mutable_tables(0)->mutable_eviction()->set_show_decay(0.5f);
  Open();
  std::mt19937 rng(4);
  catalog_->SetDay(1);
  Train("adam", Keys(300, "day1"), 20, &rng);
  ASSERT_TRUE(catalog_->Shrink().ok());
  ASSERT_TRUE(catalog_->ExportNextDelta(root_ + "/day1.delta", 0).ok());
  ASSERT_TRUE(catalog_->Checkpoint(root_ + "/base1").ok());

  Open(root_ + "/base1");
  catalog_->SetDay(3);
  Train("adam", Keys(300, "day3"), 20, &rng);
  Train("sgd", Keys(300, "day3"), 20, &rng);
  absl::StatusOr<std::vector<ShrinkReport>> first = catalog_->Shrink();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT((*first)[0].dropped, 0u);  // day 1's rows are older than ttl_days
  EXPECT_FALSE((*first)[0].already_shrunk);
  ASSERT_TRUE(catalog_->ExportNextDelta(root_ + "/first.delta", 0).ok());
  ASSERT_TRUE(catalog_->Checkpoint(root_ + "/closed").ok());
  const auto closed = Snapshot();

  // The re-run restores the close's checkpoint and closes day 3 again.
  Open(root_ + "/closed");
  catalog_->SetDay(3);
  absl::StatusOr<std::vector<ShrinkReport>> again = catalog_->Shrink();
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), first->size());
  for (size_t t = 0; t < first->size(); ++t) {
    EXPECT_TRUE((*again)[t].already_shrunk);
    EXPECT_EQ((*again)[t].kept, (*first)[t].kept);
    EXPECT_EQ((*again)[t].dropped, (*first)[t].dropped);
  }
  EXPECT_TRUE(Snapshot() == closed);  // show counts decayed once, nothing evicted again
  ASSERT_TRUE(catalog_->ExportNextDelta(root_ + "/second.delta", 0).ok());
  const DecodedDelta expected = Decode(root_ + "/first.delta");
  const DecodedDelta actual = Decode(root_ + "/second.delta");
  EXPECT_EQ(actual.since_version, expected.since_version);
  EXPECT_EQ(actual.rows.size(), expected.rows.size());
  EXPECT_TRUE(actual.rows == expected.rows);
  EXPECT_TRUE(actual.tombstones == expected.tombstones);
  EXPECT_EQ(actual.tombstones.size(), (*first)[0].dropped);

  // The next day shrinks again and its delta starts where day 3's ended.
  catalog_->SetDay(4);
  absl::StatusOr<std::vector<ShrinkReport>> next = catalog_->Shrink();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE((*next)[0].already_shrunk);
  EXPECT_TRUE(Snapshot() != closed);  // decayed again
  ASSERT_TRUE(catalog_->ExportNextDelta(root_ + "/day4.delta", 0).ok());
  EXPECT_GT(Decode(root_ + "/day4.delta").since_version, actual.since_version);
}

TEST_F(TableCatalogTest, TruncatedOrCorruptDeltaFilesAreRejected) {
  Open();
  std::mt19937 rng(3);
  Train("sgd", Keys(500, "x"), 10, &rng);
  std::string path = root_ + "/full.delta";
  ASSERT_TRUE(catalog_->ExportDelta(0, path, 0).ok());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string truncated_path = root_ + "/truncated.delta";
  std::ofstream(truncated_path, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(truncated_path);
  ASSERT_TRUE(reader.ok());
  DeltaTableBlock block;
  absl::StatusOr<bool> more;
  do {
    more = (*reader)->Next(&block);
  } while (more.ok() && *more);
  ASSERT_FALSE(more.ok());
  EXPECT_TRUE(absl::IsDataLoss(more.status()));
  EXPECT_NE(more.status().message().find(truncated_path), std::string::npos) << more.status();

  std::string garbage_path = root_ + "/garbage.delta";
  std::ofstream(garbage_path, std::ios::binary) << "this is not a delta";
  EXPECT_TRUE(absl::IsDataLoss(DeltaReader::Open(garbage_path).status()));
  EXPECT_TRUE(absl::IsNotFound(DeltaReader::Open(root_ + "/missing.delta").status()));
}

}  // namespace
}  // namespace granary
