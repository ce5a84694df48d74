#include "common/config.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace granary {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    std::string path = ::testing::TempDir() + "/config_test.pbtxt";
    std::ofstream(path) << text;
    return path;
  }
};

constexpr char kGoodTable[] = R"(
tables {
  name: "emb"
  dim: 8
  initializer { kind: UNIFORM scale: 0.01 seed: 3 }
  optimizer { sgd { learning_rate: 0.1 } }
}
)";

TEST_F(ConfigTest, LoadsAValidConfig) {
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(Write(kGoodTable));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->tables_size(), 1);
  EXPECT_EQ(config->tables(0).dim(), 8u);
}

TEST_F(ConfigTest, MissingFileNamesThePath) {
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig("/nonexistent/granary.pbtxt");
  ASSERT_TRUE(absl::IsNotFound(config.status()));
  EXPECT_NE(config.status().message().find("/nonexistent/granary.pbtxt"), std::string::npos);
}

TEST_F(ConfigTest, MisspeltFieldNamesFileAndLine) {
  std::string path = Write("tables {\n  name: \"emb\"\n  dimm: 8\n}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_TRUE(absl::IsInvalidArgument(config.status()));
  EXPECT_NE(config.status().message().find(path + ":3:"), std::string::npos) << config.status();
  EXPECT_NE(config.status().message().find("dimm"), std::string::npos);
}

TEST_F(ConfigTest, WrongTypeNamesTheLine) {
  std::string path = Write("tables {\n  name: \"emb\"\n  dim: \"eight\"\n}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":3:"), std::string::npos) << config.status();
}

TEST_F(ConfigTest, InvalidValueNamesTheLineOfTheField) {
  std::string path = Write(
      "tables {\n"
      "  name: \"emb\"\n"
      "  dim: 0\n"
      "  optimizer { sgd { learning_rate: 0.1 } }\n"
      "}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":3: table 'emb' needs dim >= 1"),
            std::string::npos)
      << config.status();
}

TEST_F(ConfigTest, NonPositiveLearningRateNamesItsLine) {
  std::string path = Write(
      "tables {\n"
      "  name: \"emb\"\n"
      "  dim: 4\n"
      "  optimizer {\n"
      "    sgd { learning_rate: -1 }\n"
      "  }\n"
      "}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":5:"), std::string::npos) << config.status();
  EXPECT_NE(config.status().message().find("learning_rate"), std::string::npos);
}

TEST_F(ConfigTest, EveryOptimizerIsValidatedWithTheLineOfTheBadField) {
  std::string path = Write(
      "tables {\n"
      "  name: \"emb\"\n"
      "  dim: 4\n"
      "  optimizer { adam {\n"
      "    learning_rate: 0.01\n"
      "    beta1: 1.0\n"
      "  } }\n"
      "}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":6: table 'emb' needs adam beta1 in [0, 1)"),
            std::string::npos)
      << config.status();

  path = Write("tables { name: \"f\" dim: 1 optimizer { ftrl { alpha: 0.1 l1: -1 } } }\n");
  config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("needs ftrl l1 >= 0"), std::string::npos);

  path = Write(
      "tables { name: \"a\" dim: 1 optimizer { adagrad { learning_rate: 0.1 } } }\n"
      "tables { name: \"b\" dim: 1 optimizer { adam { learning_rate: 0.1 } } }\n"
      "tables { name: \"c\" dim: 1 optimizer { ftrl { alpha: 0.1 } } }\n");
  config = LoadClusterConfig(path);
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST_F(ConfigTest, AdmissionEvictionAndDenseRulesNameTheLine) {
  std::string path = Write(
      "tables {\n"
      "  name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  admission {\n"
      "    admit_probability: 1.5\n"
      "  }\n"
      "}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":4: table 'e' needs admit_probability"),
            std::string::npos)
      << config.status();

  path = Write(
      "tables { name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  eviction { show_decay: 0 } }\n");
  config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":2: table 'e' needs show_decay"),
            std::string::npos)
      << config.status();

  path = Write(
      "tables {\n"
      "  name: \"mlp\" dim: 64 optimizer { adam { learning_rate: 0.001 } }\n"
      "  dense_size: 1000\n"
      "  eviction { ttl_days: 3 }\n"
      "}\n");
  config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":3: dense table 'mlp' cannot have"),
            std::string::npos)
      << config.status();
}

TEST_F(ConfigTest, MissingOptimizerAndDuplicateNamesAreErrors) {
  std::string path = Write("tables { name: \"a\" dim: 2 }\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("has no optimizer"), std::string::npos);

  path = Write(std::string(kGoodTable) + "\n" + kGoodTable);
  config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("duplicate table name 'emb'"), std::string::npos);
  EXPECT_NE(config.status().message().find(path + ":10"), std::string::npos) << config.status();
}

TEST_F(ConfigTest, ShippedConfigsLoad) {
  absl::StatusOr<proto::ClusterConfig> config =
      LoadClusterConfig(std::string(GRANARY_SOURCE_DIR) + "/configs/demo.pbtxt");
  EXPECT_TRUE(config.ok()) << config.status();
}

}  // namespace
}  // namespace granary
