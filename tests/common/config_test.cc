#include "common/config.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  // ctest runs each test in its own process, in parallel: every test gets its own file.
  std::string Write(const std::string& text) {
    std::string path =
        absl::StrCat(::testing::TempDir(), "/config_test-", getpid(), "-",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".pbtxt");
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

TEST_F(ConfigTest, GradientClippingMustBePositive) {
  std::string path = Write(
      "tables {\n"
      "  name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  clip_gradient_abs: -1\n"
      "}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":3: table 'e' needs clip_gradient_abs > 0"),
            std::string::npos)
      << config.status();

  path = Write(
      "tables { name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  clip_gradient_abs: 10 }\n");
  config = LoadClusterConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FLOAT_EQ(config->tables(0).clip_gradient_abs(), 10);
}

TEST_F(ConfigTest, TableL2MustBeInZeroToOne) {
  for (const char* l2 : {"-0.001", "1", "250", "nan"}) {
    std::string path =
        Write(absl::StrCat("tables {\n"
                           "  name: \"e\" dim: 4 optimizer { adam { learning_rate: 1 } }\n"
                           "  l2: ",
                           l2, "\n}\n"));
    absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
    ASSERT_FALSE(config.ok()) << l2;
    EXPECT_NE(config.status().message().find(path + ":3: table 'e' needs l2 in [0, 1)"),
              std::string::npos)
        << config.status();
  }
  std::string path = Write(
      "tables { name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  l2: 0.0001 }\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FLOAT_EQ(config->tables(0).l2(), 0.0001f);
}

TEST_F(ConfigTest, TableWeightDecayIsAdamsAndFinite) {
  for (const char* decay : {"-0.001", "nan", "inf"}) {
    std::string path =
        Write(absl::StrCat("tables {\n"
                           "  name: \"e\" dim: 4 optimizer { adam { learning_rate: 0.01 } }\n"
                           "  weight_decay: ",
                           decay, "\n}\n"));
    absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
    ASSERT_FALSE(config.ok()) << decay;
    EXPECT_NE(
        config.status().message().find(path + ":3: table 'e' needs a finite weight_decay >= 0"),
        std::string::npos)
        << config.status();
  }
  std::string path = Write(
      "tables { name: \"e\" dim: 4 optimizer { adagrad { learning_rate: 0.1 } }\n"
      "  weight_decay: 0.01 }\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(
                path + ":2: table 'e': weight_decay (decoupled, AdamW) needs the adam optimizer"),
            std::string::npos)
      << config.status();
  path = Write(
      "tables { name: \"e\" dim: 4 optimizer { adam { learning_rate: 0.5 } }\n"
      "  weight_decay: 2 }\n");
  config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(
                path + ":2: table 'e' needs adam learning_rate * weight_decay < 1, not 0.5 * 2"),
            std::string::npos)
      << config.status();
  path = Write(
      "tables { name: \"e\" dim: 4 optimizer { adam { learning_rate: 0.01 } }\n"
      "  weight_decay: 0.05 }\n");
  config = LoadClusterConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FLOAT_EQ(config->tables(0).weight_decay(), 0.05f);
}

TEST_F(ConfigTest, WireEncodingDefaultsToFp32AndRefusesInt8Pulls) {
  std::string path = Write(
      "tables {\n"
      "  name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  wire { pull_values: VALUES_INT8 }\n"
      "}\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(path + ":3: table 'e' needs pull_values VALUES_FP32 or"),
            std::string::npos)
      << config.status();

  path = Write(
      "tables { name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  wire { pull_values: VALUES_FP16 push_values: VALUES_INT8 } }\n"
      "tables { name: \"f\" dim: 4 optimizer { sgd { learning_rate: 1 } } }\n");
  config = LoadClusterConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tables(0).wire().pull_values(), proto::VALUES_FP16);
  EXPECT_EQ(config->tables(0).wire().push_values(), proto::VALUES_INT8);
  EXPECT_EQ(config->tables(1).wire().pull_values(), proto::VALUES_FP32);
  EXPECT_EQ(config->tables(1).wire().push_values(), proto::VALUES_FP32);
  EXPECT_EQ(config->tables(1).wire().keys(), proto::KEYS_RAW);

  path = Write(
      "tables { name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  wire { keys: KEYS_ELIAS_FANO } }\n");
  config = LoadClusterConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tables(0).wire().keys(), proto::KEYS_ELIAS_FANO);

  path = Write(
      "tables { name: \"e\" dim: 4 optimizer { sgd { learning_rate: 1 } }\n"
      "  wire { keys: 7 } }\n");
  config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("table 'e' has an unknown keys encoding 7"),
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

// Protobuf records one line per list (`tables: [{...}, {...}]`); a later element is named by
// that line, as in job and model configs (common/config_location.h).
TEST_F(ConfigTest, AnElementOfAListGetsTheLineOfTheList) {
  std::string path = Write(
      "\n"
      "tables: [{ name: \"emb\" dim: 2 optimizer { sgd { learning_rate: 0.1 } } },\n"
      "         { name: \"emb\" dim: 2 optimizer { sgd { learning_rate: 0.1 } } }]\n");
  absl::StatusOr<proto::ClusterConfig> config = LoadClusterConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), path + ":2: duplicate table name 'emb'");
}

TEST_F(ConfigTest, ShippedConfigsLoad) {
  absl::StatusOr<proto::ClusterConfig> config =
      LoadClusterConfig(std::string(GRANARY_SOURCE_DIR) + "/configs/demo.pbtxt");
  EXPECT_TRUE(config.ok()) << config.status();
}

constexpr char kGoodDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "item" role: CATEGORICAL hash_space: "item" }
columns {
  name: "history"
  role: SEQUENCE
  max_sequence_length: 5
  step_fields { name: "item" kind: CATEGORICAL hash_space: "item" }
  step_fields { name: "rating" kind: NUMERIC }
}
columns { name: "note" role: IGNORED }
)";

TEST_F(ConfigTest, LoadsAValidDatasetConfig) {
  absl::StatusOr<proto::DatasetConfig> config = LoadDatasetConfig(Write(kGoodDataset));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->columns_size(), 4);
  EXPECT_EQ(config->columns(2).step_fields_size(), 2);
  EXPECT_EQ(config->columns(2).max_sequence_length(), 5u);
  EXPECT_FALSE(config->has_max_bad_line_fraction());
}

// Each bad dataset config and the "line: message" its error must contain.
struct BadDataset {
  const char* text;
  const char* error;
};

TEST_F(ConfigTest, InvalidDatasetConfigsNameFileLineAndReason) {
  const BadDataset cases[] = {
      {"", ": dataset has no columns"},
      {"columns { role: LABEL }\n", ":1: column has no name"},
      {"columns { name: \"a\" role: LABEL }\ncolumns { name: \"b\" }\n",
       ":2: column 'b' has no role"},
      {"columns { name: \"a\" role: LABEL }\n\ncolumns { name: \"a\" role: NUMERIC }\n",
       ":3: duplicate column name 'a'"},
      {"columns { name: \"a\tb\" role: LABEL }\n", ":1: column name"},
      {"columns {\n  name: \"s\"\n  role: SEQUENCE\n}\n",
       ":1: sequence column 's' declares no step_fields"},
      {"columns {\n  name: \"s\" role: SEQUENCE\n  step_fields { name: \"x\" }\n}\n",
       ":3: step field 'x' of column 's' has no kind"},
      {"columns { name: \"s\" role: SEQUENCE\n"
       "  step_fields { name: \"x\" kind: NUMERIC }\n"
       "  step_fields { name: \"x\" kind: CATEGORICAL }\n}\n",
       ":3: duplicate step field 'x' in column 's'"},
      {"columns { name: \"s\" role: SEQUENCE\n"
       "  step_fields {\n    name: \"r\" kind: NUMERIC\n    hash_space: \"r\"\n  }\n}\n",
       ":4: step field 'r' of column 's' is not CATEGORICAL and cannot have a hash_space"},
      {"columns { name: \"s\" role: SEQUENCE\n  max_sequence_length: 0\n"
       "  step_fields { name: \"x\" kind: NUMERIC }\n}\n",
       ":2: column 's' needs max_sequence_length >= 1"},
      {"columns {\n  name: \"n\" role: NUMERIC\n  max_sequence_length: 3\n}\n",
       ":3: column 'n' is NUMERIC; only a SEQUENCE has max_sequence_length"},
      {"columns {\n  name: \"n\" role: NUMERIC\n  step_fields { name: \"x\" kind: NUMERIC }\n}\n",
       ":3: column 'n' is NUMERIC; only a SEQUENCE has step_fields"},
      {"columns {\n  name: \"l\" role: LABEL\n  hash_space: \"l\"\n}\n",
       ":3: column 'l' is LABEL; hash_space applies only to CATEGORICAL"},
      {"columns { name: \"l\" role: LABEL }\nmax_bad_line_fraction: 1.5\n",
       ":2: max_bad_line_fraction must be in [0, 1]"},
      {"columns {\n  name: \"n\" role: NUMERIC\n  max_sequence_steps: 3\n}\n",
       ":3: column 'n' is NUMERIC; only a SEQUENCE has max_sequence_steps"},
      {"columns { name: \"s\" role: SEQUENCE\n  max_sequence_length: 8\n"
       "  max_sequence_steps: 7\n  step_fields { name: \"x\" kind: NUMERIC }\n}\n",
       ":3: column 's' needs max_sequence_steps (7) >= max_sequence_length (8)"},
      {"columns { name: \"s\" role: SEQUENCE\n  max_sequence_steps: 99\n"
       "  step_fields { name: \"x\" kind: NUMERIC }\n}\n",
       ":2: column 's' needs max_sequence_steps (99) >= max_sequence_length (100)"},
      {"columns { name: \"l\" role: LABEL }\nmax_abs_numeric: 0\n",
       ":2: max_abs_numeric must be > 0 (default 1e+06)"},
      {"columns { name: \"l\" role: LABEL }\nmax_abs_numeric: nan\n",
       ":2: max_abs_numeric must be > 0"},
      {"columns { name: \"l\" role: LABEL }\nmax_line_bytes: 0\n",
       ":2: max_line_bytes must be >= 1 (default 1048576)"},
      {"columns { name: \"l\" role: LABEL }\nread_timeout_seconds: 0\n",
       ":2: read_timeout_seconds must be > 0 and finite (default 600)"},
      {"columns { name: \"l\" role: LABEL }\nread_timeout_seconds: inf\n",
       ":2: read_timeout_seconds must be > 0 and finite"},
      {"columns { name: \"l\" role: LABLE }\n", ":1:"},
      {"columns {\n  name: \"l\" role: LABEL\n  transform { log1p: true }\n}\n",
       ":3: column 'l' is LABEL; only a NUMERIC column has a transform"},
      {"columns { name: \"n\" role: NUMERIC\n  transform {\n    mean: 1\n  }\n}\n",
       ":3: column 'n' transform needs both mean and stddev"},
      {"columns { name: \"n\" role: NUMERIC\n  transform {\n    stddev: 1\n  }\n}\n",
       ":3: column 'n' transform needs both mean and stddev"},
      {"columns { name: \"n\" role: NUMERIC\n  transform { mean: 1\n stddev: 0 }\n}\n",
       ":3: column 'n' transform needs stddev > 0 and finite"},
      {"columns { name: \"n\" role: NUMERIC\n  transform { mean: 1\n stddev: inf }\n}\n",
       ":3: column 'n' transform needs stddev > 0 and finite"},
      {"columns { name: \"n\" role: NUMERIC\n  transform {\n mean: nan stddev: 2 }\n}\n",
       ":3: column 'n' transform needs a finite mean"},
      {"columns { name: \"n\" role: NUMERIC\n  transform {\n clip: -1 }\n}\n",
       ":3: column 'n' transform needs clip > 0 and finite"},
      {"columns { name: \"n\" role: NUMERIC\n  transform {\n clip: nan }\n}\n",
       ":3: column 'n' transform needs clip > 0 and finite"},
      {"columns { name: \"n\" role: NUMERIC\n  transform {\n min: 1 }\n}\n",
       ":3: column 'n' transform needs both min and max"},
      {"columns { name: \"n\" role: NUMERIC\n  transform { min: 2\n max: 2 }\n}\n",
       ":3: column 'n' transform needs finite min < max, not 2 and 2"},
  };
  for (const BadDataset& bad : cases) {
    std::string path = Write(bad.text);
    absl::StatusOr<proto::DatasetConfig> config = LoadDatasetConfig(path);
    ASSERT_TRUE(absl::IsInvalidArgument(config.status())) << bad.text;
    EXPECT_NE(config.status().message().find(path + bad.error), std::string::npos)
        << "config:\n"
        << bad.text << "\nerror: " << config.status();
  }
}

TEST_F(ConfigTest, ANumericTransformLoads) {
  absl::StatusOr<proto::DatasetConfig> good =
      LoadDatasetConfig(Write("columns { name: \"n\" role: NUMERIC\n"
                              "  transform { log1p: true mean: 2 stddev: 0.5 clip: 4 }\n}\n"));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(good->columns(0).transform().log1p());
}

TEST_F(ConfigTest, ShippedDatasetConfigsLoad) {
  absl::StatusOr<proto::DatasetConfig> config =
      LoadDatasetConfig(std::string(GRANARY_SOURCE_DIR) + "/configs/movielens_dataset.pbtxt");
  EXPECT_TRUE(config.ok()) << config.status();
}

}  // namespace
}  // namespace granary
