#include "worker/job_config.h"

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
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

std::string PooledJob(const std::string& architecture) {
  return "model {\n  embedding_dim: 8\n" + architecture + "\n" + kGoodTask +
         "\n}\ntraining { batch_size: 32 epochs: 1 train_files: \"train.tsv\" }\n";
}

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

TEST(JobConfigTest, MaxStalenessIsAbsentForAsyncAndMustNotBeNegative) {
  absl::StatusOr<JobSpec> spec = LoadJobConfig(Write(Job("item_fields: \"item_id\"", kGoodTask)));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->job.training().has_max_staleness());
  std::string job = Job("item_fields: \"item_id\"", kGoodTask);
  job.replace(job.find("epochs: 1"), 9, "epochs: 1 max_staleness: -1");
  const std::string path = Write(job);
  spec = LoadJobConfig(path);
  ASSERT_TRUE(absl::IsInvalidArgument(spec.status())) << spec.status();
  EXPECT_NE(spec.status().message().find("max_staleness must be >= 0"), std::string::npos)
      << spec.status();
  EXPECT_NE(spec.status().message().find(path + ":"), std::string::npos) << spec.status();
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

TEST(JobConfigTest, AnEmptyFieldListIsAnErrorNotACrash) {
  absl::StatusOr<JobSpec> spec = LoadJobConfig(Write(Job("", kGoodTask)));
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find("item_fields is empty"), std::string::npos)
      << spec.status();
}

TEST(JobConfigTest, NumericFieldsMustBeNumericColumnsAndErrorsNameTheLine) {
  // numeric_fields (line 6 of the job) names a column the dataset lacks.
  std::string path =
      Write(Job("item_fields: \"item_id\"\n    numeric_fields: \"nope\"", kGoodTask));
  absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
  ASSERT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find(path + ":18: numeric_fields: no column 'nope'"),
            std::string::npos)
      << spec.status();
  spec = LoadJobConfig(Write(
      Job("item_fields: \"item_id\"\n    numeric_fields: [\"price\", \"user_id\"]", kGoodTask)));
  ASSERT_TRUE(absl::IsInvalidArgument(spec.status()));
  // A list has one location in protobuf's parse tree: its line.
  EXPECT_NE(spec.status().message().find(":18: numeric_fields: column 'user_id' is not NUMERIC"),
            std::string::npos)
      << spec.status();
  spec = LoadJobConfig(
      Write(Job("item_fields: \"item_id\"\n    numeric_fields: \"price\"", kGoodTask)));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->job.model().dupn().numeric_fields_size(), 1);
  // Shared bottom and MMoE check theirs the same way.
  path = Write(
      PooledJob(R"(shared_bottom { fields: "user_id" numeric_fields: "history" bottom_mlp: 4 })"));
  spec = LoadJobConfig(path);
  EXPECT_NE(
      spec.status().message().find(path + ":15: numeric_fields: column 'history' is not NUMERIC"),
      std::string::npos)
      << spec.status();
  path = Write(PooledJob(
      R"(mmoe { fields: "user_id" numeric_fields: ["price", "gone"] num_experts: 2 expert_mlp: [4] })"));
  spec = LoadJobConfig(path);
  EXPECT_NE(spec.status().message().find(path + ":15: numeric_fields: no column 'gone'"),
            std::string::npos)
      << spec.status();
}

TEST(JobConfigTest, MulticlassNeedsClasses) {
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(Write(Job("item_fields: \"item_id\"",
                              R"(tasks { name: "c" head: MULTICLASS label_column: "click" })")));
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find("num_classes"), std::string::npos);
}

TEST(JobConfigTest, DropoutMustBeARateOfHiddenLayers) {
  for (const char* rate : {"-0.1", "1", "nan"}) {
    const std::string path = Write(
        Job("item_fields: \"item_id\"",
            absl::StrCat(R"(tasks { name: "c" head: BINARY label_column: "click" hidden_sizes: 4 )",
                         "\ndropout: ", rate, " }")));
    absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
    EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << rate;
    EXPECT_NE(spec.status().message().find("task 'c': dropout must be in [0, 1)"),
              std::string::npos)
        << spec.status();
    EXPECT_NE(spec.status().message().find(path + ":"), std::string::npos) << spec.status();
  }
  absl::StatusOr<JobSpec> spec = LoadJobConfig(
      Write(Job("item_fields: \"item_id\"",
                R"(tasks { name: "c" head: BINARY label_column: "click" dropout: 0.5 })")));
  EXPECT_NE(spec.status().message().find("task 'c': dropout acts on hidden layers"),
            std::string::npos)
      << spec.status();
  spec = LoadJobConfig(Write(Job(
      "item_fields: \"item_id\"",
      R"(tasks { name: "c" head: BINARY label_column: "click" hidden_sizes: 4 dropout: 0.5 })")));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FLOAT_EQ(spec->job.model().tasks(0).dropout(), 0.5f);
}

TEST(JobConfigTest, LoadsTheOtherMovieLensArchitectures) {
  for (const char* name : {"movielens_shared_bottom", "movielens_mmoe"}) {
    absl::StatusOr<JobSpec> spec =
        LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/", name, ".pbtxt"));
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    EXPECT_EQ(spec->job.model().tasks_size(), 3) << name;
  }
}

TEST(JobConfigTest, SharedBottomAndMmoeErrorsNameTheLine) {
  std::string path =
      Write(PooledJob(R"(shared_bottom { fields: "user_id" fields: "price" bottom_mlp: 4 })"));
  absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find(path + ":15: column 'price' is not"), std::string::npos)
      << spec.status();
  spec = LoadJobConfig(Write(PooledJob(R"(shared_bottom { fields: "history" })")));
  EXPECT_NE(spec.status().message().find("bottom_mlp needs >= 1 layer"), std::string::npos)
      << spec.status();
  spec = LoadJobConfig(Write(PooledJob(R"(mmoe { fields: "user_id" expert_mlp: [4] })")));
  EXPECT_NE(spec.status().message().find("num_experts must be >= 1"), std::string::npos)
      << spec.status();
  spec = LoadJobConfig(
      Write(PooledJob(R"(mmoe { fields: "user_id" num_experts: 2 expert_mlp: [4, 0] })")));
  EXPECT_NE(spec.status().message().find("layer widths must be >= 1"), std::string::npos)
      << spec.status();
  spec = LoadJobConfig(Write(PooledJob("")));
  EXPECT_NE(spec.status().message().find("model has no architecture"), std::string::npos)
      << spec.status();
  spec = LoadJobConfig(
      Write(PooledJob(R"(mmoe { fields: "history" num_experts: 2 expert_mlp: [4] })")));
  EXPECT_TRUE(spec.ok()) << spec.status();
}

TEST(JobConfigTest, LoadsTheMovieLensAutoIntConfigAndNamesTheLineOfAnError) {
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/movielens_autoint.pbtxt"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->job.model().autoint().attention_layers(), 3u);
  const std::string path =
      Write(PooledJob("autoint { fields: \"user_id\" attention_layers: 1 attention_heads: 0\n"
                      "  attention_head_dim: 4 }"));
  spec = LoadJobConfig(path);
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find(path + ":15: attention_heads must be >= 1"),
            std::string::npos)
      << spec.status();
}

TEST(JobConfigTest, MisspeltFieldIsAParseError) {
  absl::StatusOr<JobSpec> spec = LoadJobConfig(Write("modle {}"));
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
}

TEST(JobConfigTest, LoadsTheMovieLensRetrievalConfigs) {
  for (const char* name : {"movielens_two_tower", "movielens_dat", "movielens_atnn"}) {
    absl::StatusOr<JobSpec> spec =
        LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/", name, ".pbtxt"));
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    EXPECT_EQ(spec->job.model().tasks_size(), 1) << name;
  }
}

TEST(JobConfigTest, LoadsTheMovieLensMindConfigAndNamesTheFileOfAnError) {
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/movielens_mind.pbtxt"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->job.model().mind().num_interests(), 4u);
  const std::string path = Write(PooledJob(
      R"(mind { retrieval { user_id_column: "user_id" item_id_column: "item_id" }
             user_tower { fields: "user_id" mlp: [4] } item_tower { fields: "item_id" mlp: [4] }
             behavior_column: "history" attention_power: 0.5 })"));
  spec = LoadJobConfig(path);
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find(path + ":"), std::string::npos) << spec.status();
  EXPECT_NE(spec.status().message().find("model.mind.attention_power: must be >= 1"),
            std::string::npos)
      << spec.status();
}

TEST(JobConfigTest, LoadsTheMovieLensRalmUserConfigAndNamesANumericFieldWithoutARange) {
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/movielens_ralm_user.pbtxt"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->job.model().ralm_user().numeric_fields_size(), 1);
  // "price" is NUMERIC without a min-max transform.
  const std::string path = Write(PooledJob(
      R"(ralm_user { retrieval { user_id_column: "user_id" item_id_column: "item_id" }
             user_fields: "user_id" numeric_fields: "price" user_mlp: [4]
             item_tower { fields: "item_id" mlp: [4] } })"));
  spec = LoadJobConfig(path);
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find(path + ":"), std::string::npos) << spec.status();
  EXPECT_NE(spec.status().message().find("model.ralm_user.numeric_fields[0]: column 'price' has "
                                         "no min-max range"),
            std::string::npos)
      << spec.status();
}

TEST(JobConfigTest, RetrievalErrorsNameTheFileAndTheField) {
  std::string path = Write(PooledJob(
      R"(two_tower { retrieval { user_id_column: "user_id" item_id_column: "price" }
             user_tower { fields: "user_id" mlp: [4] } item_tower { fields: "item_id" mlp: [4] }
             loss: IN_BATCH_SOFTMAX })"));
  absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_NE(spec.status().message().find(path + ":"), std::string::npos) << spec.status();
  EXPECT_NE(spec.status().message().find("model.two_tower.retrieval.item_id_column: 'price' is "
                                         "not a CATEGORICAL column"),
            std::string::npos)
      << spec.status();
  spec = LoadJobConfig(Write(PooledJob(
      R"(atnn { retrieval { user_id_column: "user_id" item_id_column: "item_id" }
             user_tower { fields: "user_id" mlp: [4] } item_tower { fields: "item_id" mlp: [4] }
             statistics_columns: "user_id" })")));
  EXPECT_NE(spec.status().message().find("model.atnn.statistics_columns[0]: column 'user_id' is "
                                         "not NUMERIC"),
            std::string::npos)
      << spec.status();
}

// TowerConfig.dropout: a rate in [0, 1) of hidden layers, so a tower needs two layers for it.
TEST(JobConfigTest, TowerDropoutMustBeARateOfHiddenLayers) {
  auto two_tower = [](const std::string& user_tower) {
    return Write(PooledJob(
        R"(two_tower { retrieval { user_id_column: "user_id" item_id_column: "item_id" }
             user_tower { fields: "user_id" )" +
        user_tower +
        R"( } item_tower { fields: "item_id" mlp: [8, 4] } loss: IN_BATCH_SOFTMAX })"));
  };
  for (const char* rate : {"-0.1", "1", "nan"}) {
    absl::StatusOr<JobSpec> spec =
        LoadJobConfig(two_tower(absl::StrCat("mlp: [8, 4] dropout: ", rate)));
    EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << rate;
    EXPECT_NE(spec.status().message().find(
                  "model.two_tower.user_tower.dropout: dropout must be in [0, 1)"),
              std::string::npos)
        << spec.status();
  }
  absl::StatusOr<JobSpec> spec = LoadJobConfig(two_tower("mlp: [4] dropout: 0.5"));
  EXPECT_NE(spec.status().message().find(
                "model.two_tower.user_tower.dropout: dropout acts on hidden layers"),
            std::string::npos)
      << spec.status();
  spec = LoadJobConfig(two_tower("mlp: [8, 4] dropout: 0.5"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FLOAT_EQ(spec->job.model().two_tower().user_tower().dropout(), 0.5f);
}

// SharedBottomConfig, MmoeConfig and DupnConfig.dropout: rates in [0, 1), errors at their line.
TEST(JobConfigTest, BottomAndExpertDropoutMustBeARate) {
  for (const char* rate : {"-0.1", "1", "nan"}) {
    std::string path = Write(PooledJob(
        absl::StrCat(R"(shared_bottom { fields: "user_id" bottom_mlp: 4 dropout: )", rate, " }")));
    absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
    EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << rate;
    EXPECT_NE(spec.status().message().find(path + ":15: dropout (of bottom_mlp) must be in [0, 1)"),
              std::string::npos)
        << spec.status();
    path = Write(PooledJob(absl::StrCat(
        R"(mmoe { fields: "user_id" num_experts: 2 expert_mlp: 4 dropout: )", rate, " }")));
    spec = LoadJobConfig(path);
    EXPECT_NE(spec.status().message().find(path + ":15: dropout (of expert_mlp) must be in [0, 1)"),
              std::string::npos)
        << spec.status();
  }
  const std::string path = Write(Job("item_fields: \"item_id\" dropout: 1", kGoodTask));
  absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
  EXPECT_NE(spec.status().message().find(path + ":17: dropout (of user_mlp) must be in [0, 1)"),
            std::string::npos)
      << spec.status();
  spec = LoadJobConfig(
      Write(PooledJob(R"(shared_bottom { fields: "user_id" bottom_mlp: 4 dropout: 0.3 })")));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FLOAT_EQ(spec->job.model().shared_bottom().dropout(), 0.3f);
}

}  // namespace
}  // namespace granary
