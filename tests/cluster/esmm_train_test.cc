// End to end: ESMM trained by the Trainer against 2 servers (in-process cluster, real TCP) on a
// planted click-then-conversion TSV stream: the merged evaluation holds the click task over
// every impression, the conversion task over the clicked ones and the appended ctcvr task over
// every impression, and each ranks well above chance.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/click_and_buy_biases.h"
#include "tests/testing/in_process_training.h"
#include "tests/testing/synthetic_clicks.h"
#include "worker/job_config.h"
#include "worker/nn/loss.h"
#include "worker/train/trainer.h"

namespace granary {
namespace {

constexpr int kUsersOfStream = 200;
constexpr int kItemsOfStream = 100;
constexpr int kTrainImpressions = 20000;
constexpr int kEvalImpressions = 4000;
// Clicks and conversions follow user and item biases of unit variance around these.
constexpr float kClickBias = -1.0f;
constexpr float kConversionBias = 0.0f;

constexpr char kDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "buy" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL }
)";

constexpr char kJob[] = R"(
model {
  embedding_dim: 8
  sparse_table: "emb"
  dense_table: "dense"
  esmm { fields: ["user_id", "item_id"] ctr_task: "click" cvr_task: "buy" }
  tasks { name: "click" head: BINARY label_column: "click" hidden_sizes: [16] }
  tasks { name: "buy" head: BINARY label_column: "buy" hidden_sizes: [16] }
}
training {
  batch_size: 64
  epochs: 3
  seed: 1
  train_files: "train.tsv"
  eval_files: "eval.tsv"
  metrics_file: "out/metrics.jsonl"
}
)";

struct StreamCounts {
  int eval_clicked = 0;  // eval impressions clicked (the buy task's labelled ones)
};

// Writes <dir>/train.tsv and <dir>/eval.tsv: a conversion cell only where the impression was
// clicked (empty otherwise), as a log of purchases after clicks holds them.
StreamCounts WriteStream(const std::string& dir) {
  std::mt19937 rng(11);
  const ClickAndBuyBiases biases = DrawClickAndBuyBiases(kUsersOfStream, kItemsOfStream, &rng);
  std::uniform_int_distribution<int> user(0, kUsersOfStream - 1), item(0, kItemsOfStream - 1);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  StreamCounts counts;
  for (const auto& [name, lines] : {std::pair<std::string, int>{"train.tsv", kTrainImpressions},
                                    {"eval.tsv", kEvalImpressions}}) {
    std::ofstream out(dir + "/" + name);
    out << "click\tbuy\tuser_id\titem_id\n";
    for (int n = 0; n < lines; ++n) {
      const int u = user(rng), i = item(rng);
      const bool clicked =
          coin(rng) < nn::Sigmoid(biases.user_click[u] + biases.item_click[i] + kClickBias);
      const bool bought =
          coin(rng) < nn::Sigmoid(biases.user_buy[u] + biases.item_buy[i] + kConversionBias);
      if (name == "eval.tsv") counts.eval_clicked += clicked;
      out << (clicked ? 1 : 0) << "\t" << (clicked ? (bought ? "1" : "0") : "") << "\tu" << u
          << "\ti" << i << "\n";
    }
  }
  return counts;
}

TEST(EsmmTrainTest, TheTrainerReportsClickConversionGivenClickAndCtcvr) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/esmm_train_test-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const StreamCounts counts = WriteStream(dir);

  // Through the job file a user writes, so that every default is filled as in production.
  std::ofstream(dir + "/job.pbtxt") << "dataset {" << kDataset << "}\n" << kJob;
  absl::StatusOr<JobSpec> spec = LoadJobConfig(dir + "/job.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();

  const absl::StatusOr<std::vector<std::vector<EpochReport>>> trained =
      TrainInProcessCluster(*spec, SyntheticClicksClusterConfig(), dir);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const std::vector<EpochReport>& reports = (*trained)[0];
  ASSERT_EQ(reports.size(), 3u);

  const std::vector<TaskMetrics>& eval = reports.back().eval;
  ASSERT_EQ(eval.size(), 3u);
  EXPECT_EQ(eval[0].task, "click");
  EXPECT_EQ(eval[0].count, kEvalImpressions);
  EXPECT_EQ(eval[1].task, "buy");
  EXPECT_EQ(eval[1].count, counts.eval_clicked);
  EXPECT_EQ(eval[2].task, "ctcvr");
  EXPECT_EQ(eval[2].count, kEvalImpressions);
  // User and item biases alone: a model that learned them ranks well above chance (one run:
  // click 0.771, buy 0.720, ctcvr 0.774; buy 0.719-0.720 over three; the buy task has a third
  // of the labels).
  const double bars[] = {0.74, 0.69, 0.74};
  for (size_t k = 0; k < eval.size(); ++k) {
    ASSERT_TRUE(eval[k].auc.has_value()) << eval[k].task;
    EXPECT_GT(*eval[k].auc, bars[k]) << eval[k].task;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace granary
