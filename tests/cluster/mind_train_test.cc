// End to end: MIND trained against 2 servers (in-process cluster, real TCP) on synthetic
// histories where every user has two planted interests, two item clusters out of many, must
// retrieve held-out positives better than a two-tower model over the same history, tables and
// schedule: one user vector has to point between the two clusters, where, in a space of fewer
// dimensions than clusters, other clusters lie too; MIND's interests can point at each.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/in_process_training.h"
#include "worker/job_config.h"
#include "worker/train/retrieval_evaluator.h"
#include "worker/train/trainer.h"

namespace granary {
namespace {

// 40 clusters in an 8-dimensional space cannot all be orthogonal: the midpoint of two cluster
// directions is near others.
constexpr int kClusters = 40;
constexpr int kItemsPerCluster = 5;
constexpr int kUsers = 400;
constexpr int kHistorySteps = 8;
constexpr int kTrainSamples = 20000;
constexpr int kEvalSamples = 2000;
// The data seeds the test runs over; each must show MIND ahead by kMarginOverTwoTower.
constexpr int kDataSeeds[] = {1, 2, 3};
constexpr double kMarginOverTwoTower = 0.05;
// Both models' schedule and tables: Adam on the rows and dense parameters alike.
constexpr int kEpochs = 3;
constexpr float kLearningRate = 0.01f;
constexpr float kRowInitScale = 0.1f;

constexpr char kDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL hash_space: "item" }
columns {
  name: "history"
  role: SEQUENCE
  step_fields { name: "item" kind: CATEGORICAL hash_space: "item" }
}
)";

// Each user has two distinct clusters; a sample's history is kHistorySteps items drawn from
// them alternately, its target (a positive) an item of either, with equal odds.
void WriteTwoInterestData(const std::string& dir, int seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> cluster(0, kClusters - 1);
  std::uniform_int_distribution<int> member(0, kItemsPerCluster - 1);
  std::uniform_int_distribution<int> user(0, kUsers - 1);
  std::bernoulli_distribution coin;
  std::vector<std::pair<int, int>> interests(kUsers);
  for (auto& [first, second] : interests) {
    first = cluster(rng);
    do second = cluster(rng);
    while (second == first);
  }
  auto item_of = [&](int c) { return c * kItemsPerCluster + member(rng); };
  auto write = [&](const std::string& path, int samples) {
    std::ofstream out(path);
    out << "click\tuser_id\titem_id\thistory\n";
    for (int i = 0; i < samples; ++i) {
      const int u = user(rng);
      const auto [first, second] = interests[u];
      std::string history;
      for (int t = 0; t < kHistorySteps; ++t) {
        absl::StrAppend(&history, t == 0 ? "" : ";", item_of(t % 2 == 0 ? first : second));
      }
      out << "1\t" << u << "\t" << item_of(coin(rng) ? first : second) << "\t" << history << "\n";
    }
  };
  write(dir + "/train.tsv", kTrainSamples);
  write(dir + "/eval.tsv", kEvalSamples);
}

// HitRate@10 over eval.tsv's positives after training `model` (an architecture) on `dir`.
double TrainedHitRateAt10(const std::string& dir, const std::string& model) {
  const absl::StatusOr<std::vector<EpochReport>> reports = TrainClickJob(
      kDataset, model, kEpochs, AdamEmbAndDenseTables(kRowInitScale, kLearningRate), dir);
  if (!reports.ok()) {
    ADD_FAILURE() << reports.status();
    return 0;
  }
  const std::vector<EpochReport>& epochs = *reports;
  if (epochs.empty() || !epochs.back().retrieval.has_value()) {
    ADD_FAILURE() << "no retrieval evaluation";
    return 0;
  }
  EXPECT_EQ(epochs.back().retrieval->overall.queries, kEvalSamples);
  return epochs.back().retrieval->overall.hit_rates[0];  // the first cutoff, 10
}

constexpr char kRetrieval[] =
    "retrieval { user_id_column: \"user_id\" item_id_column: \"item_id\" temperature: 0.1 }\n";

TEST(MindTrainTest, TwoPlantedInterestsAreRetrievedBetterThanByOneVector) {
  for (int seed : kDataSeeds) {
    const std::string dir = absl::StrCat(::testing::TempDir(), "/mind_train_test-", getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    WriteTwoInterestData(dir, seed);
    const double mind =
        TrainedHitRateAt10(dir, absl::StrCat("mind {", kRetrieval,
                                             "user_tower { fields: [\"history\"] mlp: [8] }\n"
                                             "item_tower { fields: [\"item_id\"] mlp: [8] }\n"
                                             "behavior_column: \"history\" num_interests: 2 }"));
    const double two_tower =
        TrainedHitRateAt10(dir, absl::StrCat("two_tower {", kRetrieval,
                                             "user_tower { fields: [\"history\"] mlp: [8] }\n"
                                             "item_tower { fields: [\"item_id\"] mlp: [8] }\n"
                                             "loss: IN_BATCH_SOFTMAX }"));
    std::cout << "seed " << seed << " HR@10 over " << kClusters * kItemsPerCluster
              << " items: mind " << mind << ", two_tower " << two_tower << "\n";
    // Measured (3 epochs, 2026-12-07, two runs, identical): mind 0.9905-0.999, two_tower
    // 0.9065-0.915 over the three seeds.
    EXPECT_GE(mind, two_tower + kMarginOverTwoTower) << "seed " << seed;
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace granary
