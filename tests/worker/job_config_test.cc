#include "worker/job_config.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr char kDataset[] = R"(
dataset {
  columns { name: "click" role: LABEL }
  columns { name: "user_id" role: CATEGORICAL }
  columns { name: "item_id" role: CATEGORICAL }
  columns { name: "price" role: NUMERIC }
  columns {
    name: "history"
    role: SEQUENCE
    step_fields { name: "item_id" kind: CATEGORICAL hash_space: "item_id" }
  }
}
)";

// One file per test: ctest runs the tests of this file as parallel processes.
std::string Write(const std::string& text) {
  std::string path = ::testing::TempDir() + "/job_config_test." +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".pbtxt";
  std::ofstream(path) << kDataset << text;
  return path;
}

std::string Job(const std::string& item_fields, const std::string& task) {
  return R"(model {
  embedding_dim: 8
  dupn {
    user_fields: "user_id"
)" + item_fields +
         R"(
    behavior_column: "history"
    lstm_hidden: 8
    attention_hidden: 8
    user_mlp: [16]
  }
)" + task +
         R"(
}
training { batch_size: 32 epochs: 1 train_files: "train.tsv" }
)";
}

constexpr char kGoodTask[] = R"(tasks { name: "click" head: BINARY label_column: "click" })";

TEST(JobConfigTest, LoadsTheMovieLensJobAndFillsDefaults) {
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(std::string(GRANARY_SOURCE_DIR) + "/configs/movielens_dupn.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->job.model().embedding_dim(), 16u);
  EXPECT_EQ(spec->job.model().tasks_size(), 3);
  EXPECT_GT(spec->dataset.columns_size(), 0);
  EXPECT_EQ(spec->job.training().barrier_timeout_seconds(), kDefaultBarrierTimeoutSeconds);
}

TEST(JobConfigTest, InlineDatasetAndDefaults) {
  absl::StatusOr<JobSpec> spec = LoadJobConfig(Write(Job("item_fields: \"item_id\"", kGoodTask)));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->job.model().sparse_table(), kDefaultSparseTable);
  EXPECT_EQ(spec->job.model().tasks(0).loss_weight(), kDefaultLossWeight);
}

TEST(JobConfigTest, UnknownColumnNamesFileAndLine) {
  std::string path = Write(Job("item_fields: \"nope\"", kGoodTask));
  absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
  ASSERT_TRUE(absl::IsInvalidArgument(spec.status()));
  // The dataset takes 12 lines; item_fields is line 5 of the job.
  EXPECT_NE(spec.status().message().find(path + ":17: no column 'nope'"), std::string::npos)
      << spec.status();
}

TEST(JobConfigTest, WrongRolesAreErrors) {
  absl::StatusOr<JobSpec> spec = LoadJobConfig(Write(Job("item_fields: \"price\"", kGoodTask)));
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  spec = LoadJobConfig(Write(Job("item_fields: \"item_id\"",
                                 R"(tasks { name: "c" head: BINARY label_column: "user_id" })")));
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find("is not a LABEL column"), std::string::npos);
}

TEST(JobConfigTest, MulticlassNeedsClasses) {
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(Write(Job("item_fields: \"item_id\"",
                              R"(tasks { name: "c" head: MULTICLASS label_column: "click" })")));
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find("num_classes"), std::string::npos);
}

TEST(JobConfigTest, MisspeltFieldIsAParseError) {
  absl::StatusOr<JobSpec> spec = LoadJobConfig(Write("modle {}"));
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
}

}  // namespace
}  // namespace granary
