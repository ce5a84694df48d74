#include "ps/base_reader.h"

#include <filesystem>
#include <map>
#include <vector>

#include "common/delta_file.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "ps/base_export.h"
#include "ps/table_catalog.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

constexpr int kDim = 2;
constexpr int kKeys = 50;
constexpr size_t kBlockCacheBytes = 1 << 20;

proto::ClusterConfig OneTable() {
  proto::ClusterConfig config;
  proto::TableConfig* table = config.add_tables();
  table->set_name("emb");
  table->set_dim(kDim);
  table->mutable_initializer()->set_kind(proto::InitializerConfig::NORMAL);
  table->mutable_initializer()->set_scale(0.1f);
  table->mutable_optimizer()->mutable_adagrad()->set_learning_rate(0.1f);
  return config;
}

// Every row of `delta_path`, by key.
std::map<uint64_t, std::vector<float>> RowsOf(const std::string& delta_path) {
  std::map<uint64_t, std::vector<float>> rows;
  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(delta_path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return rows;
  DeltaTableBlock block;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    for (size_t i = 0; i < block.keys.size(); ++i) {
      rows[block.keys[i]].assign(block.values.begin() + i * kDim,
                                 block.values.begin() + (i + 1) * kDim);
    }
  }
  return rows;
}

TEST(BaseReaderTest, ReadsTheTrainedValuesOfACheckpointInPlaceAsTheExportDoes) {
  const std::string root = MakeTempDir("base-reader");
  ASSERT_FALSE(root.empty());
  const proto::ClusterConfig config = OneTable();
  std::vector<uint64_t> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(FeatureKey("id", std::to_string(i)));
  std::vector<float> trained(keys.size() * kDim);
  {
    TableCatalogOptions options;
    options.path = root + "/live";
    absl::StatusOr<std::unique_ptr<TableCatalog>> catalog = TableCatalog::Open(config, options);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    EmbeddingTable* table = (*catalog)->Find("emb");
    std::vector<float> grads(keys.size() * kDim);
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
    for (int step = 0; step < 3; ++step) {
      auto cut = (*catalog)->LockForRequest();
      ASSERT_TRUE(table->Push(keys, grads.data()).ok());
    }
    {
      auto cut = (*catalog)->LockForRequest();
      ASSERT_TRUE(table->Pull(keys, trained.data(), /*read_only=*/true).ok());
    }
    std::filesystem::create_directories(root + "/base");
    const absl::Status checkpointed = (*catalog)->Checkpoint(root + "/base/server-0");
    ASSERT_TRUE(checkpointed.ok()) << checkpointed;
  }
  const std::string shard = root + "/base/server-0";
  const auto before = std::filesystem::last_write_time(shard);

  absl::StatusOr<std::unique_ptr<BaseShardRows>> reader =
      OpenBaseReader(config, shard, kBlockCacheBytes);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->tables(), std::vector<std::string>{"emb"});
  EXPECT_EQ((*reader)->dim("emb"), kDim);
  EXPECT_EQ((*reader)->dim("other"), -1);

  // One batch: every trained key, and one without a row in the middle.
  std::vector<uint64_t> batch = keys;
  const uint64_t absent = FeatureKey("id", "never trained");
  batch.insert(batch.begin() + kKeys / 2, absent);
  std::vector<float> rows(batch.size() * kDim, -1);
  std::unique_ptr<bool[]> found(new bool[batch.size()]);
  const absl::Status read = (*reader)->Read("emb", batch, rows.data(), found.get());
  ASSERT_TRUE(read.ok()) << read;

  ASSERT_TRUE(ExportBaseShard(config, shard, 0, root + "/scratch", root + "/base.delta").ok());
  std::map<uint64_t, std::vector<float>> exported = RowsOf(root + "/base.delta");
  ASSERT_EQ(exported.size(), keys.size());
  for (size_t b = 0, i = 0; b < batch.size(); ++b) {
    const std::vector<float> row(rows.begin() + b * kDim, rows.begin() + (b + 1) * kDim);
    if (batch[b] == absent) {
      EXPECT_FALSE(found[b]);
      EXPECT_EQ(row, std::vector<float>(kDim, -1));  // untouched
      continue;
    }
    EXPECT_TRUE(found[b]) << "key " << i;
    // The values only: not the metadata or the optimizer's slots.
    EXPECT_EQ(row, std::vector<float>(trained.begin() + i * kDim, trained.begin() + (i + 1) * kDim))
        << "key " << i;
    EXPECT_EQ(row, exported[batch[b]]) << "key " << i;
    ++i;
  }
  const absl::Status unknown = (*reader)->Read("other", batch, rows.data(), found.get());
  EXPECT_TRUE(absl::IsNotFound(unknown)) << unknown;
  reader->reset();
  EXPECT_EQ(std::filesystem::last_write_time(shard), before);

  absl::StatusOr<std::unique_ptr<BaseShardRows>> missing =
      OpenBaseReader(config, root + "/nothing", kBlockCacheBytes);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_NE(missing.status().message().find(root + "/nothing"), std::string::npos)
      << missing.status();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace granary
