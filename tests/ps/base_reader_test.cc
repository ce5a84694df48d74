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
#include "tests/testing/trained_checkpoint.h"

namespace granary {
namespace {

constexpr int kDim = 2;
constexpr int kKeys = 50;
constexpr size_t kBlockCacheBytes = 1 << 20;

TEST(BaseReaderTest, ReadsTheTrainedValuesOfACheckpointInPlaceAsTheExportDoes) {
  const std::string root = MakeTempDir("base-reader");
  ASSERT_FALSE(root.empty());
  TrainedCheckpoint checkpoint;
  ASSERT_NO_FATAL_FAILURE(WriteTrainedCheckpoint(root, kDim, kKeys, &checkpoint));
  const proto::ClusterConfig& config = checkpoint.config;
  const std::vector<uint64_t>& keys = checkpoint.keys;
  const std::vector<float>& trained = checkpoint.trained;
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
  std::map<uint64_t, std::vector<float>> exported = DeltaRowsOf(root + "/base.delta", "emb");
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
