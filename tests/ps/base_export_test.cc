#include "ps/base_export.h"

#include <filesystem>
#include <map>
#include <vector>

#include "common/delta_file.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "ps/table_catalog.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

constexpr int kDim = 2;
constexpr int kKeys = 50;

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

TEST(BaseExportTest, ExportsEveryRowOfACheckpointWithItsTrainedValuesAndLeavesItUntouched) {
  const std::string root = MakeTempDir("base-export");
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
  const auto before = std::filesystem::last_write_time(root + "/base/server-0");

  ASSERT_TRUE(
      ExportBaseShard(config, root + "/base/server-0", 0, root + "/scratch", root + "/base.delta")
          .ok());
  std::map<uint64_t, std::vector<float>> exported;
  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(root + "/base.delta");
  ASSERT_TRUE(reader.ok()) << reader.status();
  DeltaTableBlock block;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ASSERT_EQ(block.table, "emb");
    for (size_t i = 0; i < block.keys.size(); ++i) {
      exported[block.keys[i]].assign(block.values.begin() + i * kDim,
                                     block.values.begin() + (i + 1) * kDim);
    }
  }
  ASSERT_EQ(exported.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(exported[keys[i]],
              std::vector<float>(trained.begin() + i * kDim, trained.begin() + (i + 1) * kDim))
        << "key " << i;
  }
  EXPECT_FALSE(std::filesystem::exists(root + "/scratch"));
  EXPECT_EQ(std::filesystem::last_write_time(root + "/base/server-0"), before);

  const absl::Status missing =
      ExportBaseShard(config, root + "/nothing", 0, root + "/scratch", root + "/x.delta");
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_NE(missing.message().find(root + "/nothing"), std::string::npos) << missing;
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace granary
