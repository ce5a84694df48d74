#include "ps/base_export.h"

#include <filesystem>
#include <map>
#include <vector>

#include "common/delta_file.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "ps/table_catalog.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/trained_checkpoint.h"

namespace granary {
namespace {

constexpr int kDim = 2;
constexpr int kKeys = 50;

TEST(BaseExportTest, ExportsEveryRowOfACheckpointWithItsTrainedValuesAndLeavesItUntouched) {
  const std::string root = MakeTempDir("base-export");
  ASSERT_FALSE(root.empty());
  TrainedCheckpoint checkpoint;
  ASSERT_NO_FATAL_FAILURE(WriteTrainedCheckpoint(root, kDim, kKeys, &checkpoint));
  const proto::ClusterConfig& config = checkpoint.config;
  const std::vector<uint64_t>& keys = checkpoint.keys;
  const std::vector<float>& trained = checkpoint.trained;
  const auto before = std::filesystem::last_write_time(root + "/base/server-0");

  ASSERT_TRUE(
      ExportBaseShard(config, root + "/base/server-0", 0, root + "/scratch", root + "/base.delta")
          .ok());
  std::map<uint64_t, std::vector<float>> exported = DeltaRowsOf(root + "/base.delta", "emb");
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
