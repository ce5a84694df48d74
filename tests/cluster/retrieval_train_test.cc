// End to end: each retrieval model (two_tower, dat, atnn) trained by 2 workers against 2
// servers (in-process cluster, real TCP) on synthetic data with a known structure must
// retrieve the held-out positives far above chance, score new items (first seen in the eval
// file) through their features, and export its vectors.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/config.h"
#include "common/vector_file.h"
#include "gtest/gtest.h"
#include "tests/testing/in_process_training.h"
#include "worker/train/trainer.h"

namespace granary {
namespace {

constexpr int kTopics = 5;
constexpr int kItemsPerTopic = 20;
constexpr int kColdItemsPerTopic = 2;  // the last items of each topic appear only in eval
constexpr int kUsers = 150;
constexpr int kTrainEventsPerUser = 40;
constexpr int kEvalEventsPerUser = 10;
constexpr double kPositiveShare = 0.6;
constexpr int kWorkers = 2;
constexpr float kRowInitScale = 0.1f;
constexpr float kRowLearningRate = 0.2f;
constexpr float kDenseLearningRate = 0.01f;

constexpr char kDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL }
columns { name: "topic" role: CATEGORICAL }
columns { name: "item_count" role: NUMERIC }
)";

// Each user likes one topic: a positive (click 1) is an item of that topic, a negative one of
// another topic. Topic t is liked by a share of the users proportional to t + 1, so items are
// the more popular the higher their topic. Items
// carry their topic as a feature, so an item never trained on can still be placed by it. item_count
// is log(1 + the item's earlier events): ATNN's statistics.
void WriteSyntheticData(const std::string& dir) {
  std::mt19937 rng(23);
  std::bernoulli_distribution positive(kPositiveShare);
  std::uniform_int_distribution<int> any_topic(0, kTopics - 1);
  absl::flat_hash_map<int, int> seen;
  auto write = [&](std::ofstream& out, int user, bool eval) {
    int liked = 0;  // topic t owns t + 1 of every kTopics (kTopics + 1) / 2 users
    int slot = user % (kTopics * (kTopics + 1) / 2);
    while (slot > liked) {
      slot -= liked + 1;
      ++liked;
    }
    const bool click = positive(rng);
    int topic = liked;
    while (!click && topic == liked) topic = any_topic(rng);
    const int per_topic = eval ? kItemsPerTopic : kItemsPerTopic - kColdItemsPerTopic;
    const int item =
        topic * kItemsPerTopic + std::uniform_int_distribution<int>(0, per_topic - 1)(rng);
    out << (click ? 1 : 0) << "\t" << user << "\t" << item << "\t" << topic << "\t"
        << absl::StrFormat("%.4f", std::log1p(seen[item]++)) << "\n";
  };
  const std::string header = "click\tuser_id\titem_id\ttopic\titem_count\n";
  std::ofstream train(dir + "/train.tsv"), eval(dir + "/eval.tsv");
  train << header;
  eval << header;
  for (int e = 0; e < kTrainEventsPerUser; ++e) {
    for (int u = 0; u < kUsers; ++u) write(train, u, false);
  }
  for (int e = 0; e < kEvalEventsPerUser; ++e) {
    for (int u = 0; u < kUsers; ++u) write(eval, u, true);
  }
}

// Adagrad on the rows, Adam on the dense parameters.
proto::ClusterConfig RetrievalClusterConfig() {
  proto::OptimizerConfig adagrad;
  adagrad.mutable_adagrad()->set_learning_rate(kRowLearningRate);
  return EmbAndDenseTables(kRowInitScale, adagrad, kDenseLearningRate);
}

constexpr char kTraining[] = R"(
training {
  batch_size: 64
  epochs: 6
  seed: 3
  train_files: "train.tsv"
  eval_files: "eval.tsv"
  metrics_file: "out/metrics.jsonl"
  barrier_timeout_seconds: 60
}
)";

struct RetrievalCase {
  std::string name;
  std::string model;
  double min_hit_rate_at_10;  // overall; chance is 10 / 100
};

void PrintTo(const RetrievalCase& test_case, std::ostream* out) { *out << test_case.name; }

class RetrievalTrainTest : public ::testing::TestWithParam<RetrievalCase> {};

TEST_P(RetrievalTrainTest, TwoWorkersRetrieveHeldOutPositives) {
  const RetrievalCase& test_case = GetParam();
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/retrieval_train_test_", test_case.name, "-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  WriteSyntheticData(dir);

  JobSpec spec;
  ASSERT_TRUE(ParseTextProto(kDataset, "dataset", &spec.dataset).ok());
  ASSERT_TRUE(
      ParseTextProto(absl::StrCat("model {\n  sparse_table: \"emb\" dense_table: \"dense\"\n",
                                  test_case.model, "\n}\n", kTraining),
                     "job", &spec.job)
          .ok());
  *spec.job.mutable_dataset() = spec.dataset;
  absl::Status valid = ValidateJobConfig(spec.job, spec.dataset, "job", nullptr);
  ASSERT_TRUE(valid.ok()) << valid;

  const absl::StatusOr<std::vector<std::vector<EpochReport>>> trained =
      TrainInProcessCluster(spec, RetrievalClusterConfig(), dir, kWorkers);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const std::vector<std::vector<EpochReport>>& reports = *trained;

  // Worker 0 (either thread) evaluated retrieval after the last epoch.
  const int first = reports[0].back().retrieval.has_value() ? 0 : 1;
  ASSERT_TRUE(reports[first].back().retrieval.has_value());
  EXPECT_FALSE(reports[1 - first].back().retrieval.has_value());
  const RetrievalEvaluation& evaluation = *reports[first].back().retrieval;
  EXPECT_EQ(evaluation.corpus_items, kTopics * kItemsPerTopic);
  EXPECT_EQ(evaluation.cold_items, kTopics * kColdItemsPerTopic);
  EXPECT_GT(evaluation.overall.queries, kUsers * kEvalEventsPerUser * kPositiveShare * 0.8);
  EXPECT_GT(evaluation.cold.queries, 0);
  ASSERT_EQ(evaluation.overall.ks, (std::vector<int>{10, 50, 100}));
  EXPECT_GE(evaluation.overall.hit_rates[0], test_case.min_hit_rate_at_10);
  EXPECT_DOUBLE_EQ(evaluation.overall.hit_rates[2], 1.0);  // the corpus has 100 items
  // A new item is placed by its topic: its positives rank within the liked topic's ~20 items
  // far more often than the 50% chance of the top 50.
  EXPECT_GE(evaluation.cold.hit_rates[1], 0.7);
  ASSERT_TRUE(evaluation.warm_auc.has_value());
  EXPECT_GE(*evaluation.warm_auc, 0.8);
  ASSERT_TRUE(evaluation.cold_auc.has_value());
  EXPECT_GE(*evaluation.cold_auc, 0.7);

  // Only ATNN predicts the popularity of new arrivals (from its mean user vector): new items of
  // the more popular topics must come first.
  if (test_case.name == "atnn") {
    ASSERT_TRUE(evaluation.new_item_popularity_spearman.has_value());
    EXPECT_GE(*evaluation.new_item_popularity_spearman, 0.5);
  } else {
    EXPECT_FALSE(evaluation.new_item_popularity_spearman.has_value());
  }

  absl::StatusOr<VectorSet> items = ReadVectorFile(dir + "/out/item_vectors.vec");
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_EQ(items->header.kind(), proto::VectorFileHeader::ITEM);
  EXPECT_EQ(items->keys.size(), static_cast<size_t>(kTopics * kItemsPerTopic));
  absl::StatusOr<VectorSet> users = ReadVectorFile(dir + "/out/user_vectors.vec");
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(users->keys.size(), static_cast<size_t>(kUsers));
  EXPECT_EQ(users->values.size(), users->keys.size() * users->header.dim());
}

constexpr char kTowers[] = R"(
    retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.1 }
    user_tower { fields: ["user_id"] mlp: [16, 8] }
    item_tower { fields: ["item_id", "topic"] mlp: [16, 8] }
)";

INSTANTIATE_TEST_SUITE_P(
    Models, RetrievalTrainTest,
    ::testing::Values(
        RetrievalCase{
            "two_tower",
            absl::StrCat("embedding_dim: 8 two_tower {", kTowers,
                         "loss: IN_BATCH_SOFTMAX sampling_bias_correction: true }\n"
                         "tasks { name: \"click\" head: BINARY label_column: \"click\" }"),
            0.3},
        RetrievalCase{
            "two_tower_bce",
            absl::StrCat("embedding_dim: 8 two_tower {", kTowers,
                         "loss: RANDOM_NEGATIVE_BCE num_negatives: 4 }\n"
                         "tasks { name: \"click\" head: BINARY label_column: \"click\" }"),
            0.3},
        RetrievalCase{
            "dat",
            absl::StrCat("embedding_dim: 8 dat { towers {", kTowers,
                         "loss: IN_BATCH_SOFTMAX } category_column: \"topic\" }\n"
                         "tasks { name: \"click\" head: BINARY label_column: \"click\" }"),
            0.3},
        RetrievalCase{"atnn",
                      "embedding_dim: 8 atnn {\n"
                      "  retrieval { user_id_column: \"user_id\" item_id_column: \"item_id\" }\n"
                      "  user_tower { fields: [\"user_id\"] mlp: [16, 8] }\n"
                      "  item_tower { fields: [\"item_id\", \"topic\"] mlp: [16, 8] }\n"
                      "  statistics_columns: \"item_count\"\n"
                      "}\n"
                      "tasks { name: \"click\" head: BINARY label_column: \"click\" }",
                      0.3}),
    [](const ::testing::TestParamInfo<RetrievalCase>& info) { return info.param.name; });

}  // namespace
}  // namespace granary
