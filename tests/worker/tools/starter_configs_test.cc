#include "worker/tools/starter_configs.h"

#include <string>
#include <vector>

#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/job_config.h"

namespace granary {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

DatasetGuess GuessOf(const std::string& header, const std::vector<std::string>& lines) {
  absl::StatusOr<DatasetGuess> guess = GuessDataset(header, lines, "data.tsv", {});
  EXPECT_TRUE(guess.ok()) << guess.status();
  return guess.ok() ? *guess : DatasetGuess{};
}

// The starter configs of `guess`, which must pass the rules the worker and scheduler load
// them with.
StarterConfigs StarterOf(const DatasetGuess& guess) {
  absl::StatusOr<StarterConfigs> starter = MakeStarterConfigs(guess, {});
  EXPECT_TRUE(starter.ok()) << starter.status();
  if (!starter.ok()) return {};
  absl::Status job = ValidateJobConfig(starter->job, guess.dataset, "job", nullptr);
  EXPECT_TRUE(job.ok()) << job;
  absl::Status cluster = ValidateClusterConfig(starter->cluster, "cluster", nullptr);
  EXPECT_TRUE(cluster.ok()) << cluster;
  return *starter;
}

TEST(StarterConfigsTest, ASequenceWithItemsGivesDupnWithUserAndItemFields) {
  DatasetGuess guess = GuessOf(
      "click\tpurchase\tuser_id\tproduct\tcolour\tprice\thistory",
      {"1\t0\tu1\tp1\tred\t3.5\tp2;p3", "0\t\tu2\tp2\tblue\t1.5\tp1", "1\t1\tu3\tp3\tred\t2.5\t"});
  StarterConfigs starter = StarterOf(guess);
  const proto::ModelConfig& model = starter.job.model();
  ASSERT_TRUE(model.has_dupn());
  EXPECT_EQ(model.dupn().behavior_column(), "history");
  // 'product' shares keys with the history's steps and is named like an item.
  EXPECT_THAT(model.dupn().item_fields(), ElementsAre("product"));
  EXPECT_THAT(model.dupn().user_fields(), ElementsAre("user_id", "colour"));
  EXPECT_THAT(model.dupn().numeric_fields(), ElementsAre("price"));
  ASSERT_EQ(model.tasks_size(), 2);
  EXPECT_EQ(model.tasks(1).label_column(), "purchase");
  EXPECT_EQ(model.embedding_dim(), kStarterEmbeddingDim);
  // Adam on both tables.
  ASSERT_EQ(starter.cluster.tables_size(), 2);
  for (const proto::TableConfig& table : starter.cluster.tables()) {
    EXPECT_TRUE(table.optimizer().has_adam()) << table.name();
  }
  EXPECT_EQ(starter.cluster.tables(0).dim(), kStarterEmbeddingDim);
  EXPECT_FLOAT_EQ(starter.cluster.tables(0).optimizer().adam().learning_rate(),
                  kStarterSparseLearningRate);
}

TEST(StarterConfigsTest, WithoutASequenceItIsSharedBottom) {
  DatasetGuess guess =
      GuessOf("label\tcity\ttags\tage", {"1\tparis\ta,b\t31.5", "0\trome\tc\t40.25"});
  StarterConfigs starter = StarterOf(guess);
  ASSERT_TRUE(starter.job.model().has_shared_bottom());
  EXPECT_THAT(starter.job.model().shared_bottom().fields(), ElementsAre("city", "tags"));
  EXPECT_THAT(starter.job.model().shared_bottom().numeric_fields(), ElementsAre("age"));
  EXPECT_THAT(starter.reasons[0], HasSubstr("no sequence"));
}

TEST(StarterConfigsTest, NoLabelOrNothingToEmbedIsAnError) {
  absl::StatusOr<StarterConfigs> unlabelled =
      MakeStarterConfigs(GuessOf("city\tage", {"paris\t31.5", "rome\t40.5"}), {});
  EXPECT_THAT(unlabelled.status().message(), HasSubstr("name the label columns with --labels"));
  absl::StatusOr<StarterConfigs> numbers_only =
      MakeStarterConfigs(GuessOf("click\tage", {"1\t31.5", "0\t40.5"}), {});
  EXPECT_THAT(numbers_only.status().message(), HasSubstr("no CATEGORICAL"));
}

}  // namespace
}  // namespace granary
