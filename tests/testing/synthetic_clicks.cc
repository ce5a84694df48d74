#include "tests/testing/synthetic_clicks.h"

#include <fstream>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace granary {
namespace {
constexpr int kHistory = 8;
constexpr int kLatent = 2;
}  // namespace

const char kSyntheticClicksDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "score" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL hash_space: "item" }
columns {
  name: "history"
  role: SEQUENCE
  max_sequence_length: 8
  step_fields { name: "item_id" kind: CATEGORICAL hash_space: "item" }
  step_fields { name: "clicked" kind: NUMERIC }
}
)";

void WriteSyntheticClicks(const std::string& dir) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick_item(0, kItems - 1);
  std::vector<std::vector<float>> preference(kUsers, std::vector<float>(kLatent));
  std::vector<std::vector<float>> type(kItems, std::vector<float>(kLatent));
  for (auto& v : preference) {
    for (float& x : v) x = normal(rng);
  }
  for (auto& v : type) {
    for (float& x : v) x = normal(rng);
  }
  const std::string header = "click\tscore\tuser_id\titem_id\thistory\n";
  std::ofstream train(dir + "/train.tsv"), eval(dir + "/eval.tsv");
  train << header;
  eval << header;
  for (int u = 0; u < kUsers; ++u) {
    std::vector<std::string> history;
    for (int e = 0; e < kTrainEventsPerUser + kEvalEventsPerUser; ++e) {
      const int item = pick_item(rng);
      float affinity = 0;
      for (int d = 0; d < kLatent; ++d) affinity += preference[u][d] * type[item][d];
      const int click = affinity + 0.5f * normal(rng) > 0 ? 1 : 0;
      std::ofstream& out = e < kTrainEventsPerUser ? train : eval;
      const size_t first = history.size() > kHistory ? history.size() - kHistory : 0;
      out << click << "\t" << affinity << "\t" << u << "\t" << item << "\t"
          << absl::StrJoin(history.begin() + first, history.end(), ";") << "\n";
      history.push_back(absl::StrCat(item, ",", click));
    }
  }
}

void WriteSyntheticClicksRun(const std::string& dir, int copies, int epochs) {
  WriteSyntheticClicks(dir);
  const std::string train = ReadFile(dir + "/train.tsv");
  const std::string rows = train.substr(train.find('\n') + 1);
  {
    std::ofstream out(dir + "/train.tsv", std::ios::app);
    for (int copy = 1; copy < copies; ++copy) out << rows;
  }
  std::ofstream(dir + "/dataset.pbtxt") << kSyntheticClicksDataset;
  std::ofstream(dir + "/job.pbtxt")
      << "dataset_config: \"dataset.pbtxt\"\n"
      << absl::StrReplaceAll(kSyntheticClicksJob,
                             {{"epochs: 12", absl::StrCat("epochs: ", epochs)}});
  std::string cluster;
  EXPECT_TRUE(
      google::protobuf::TextFormat::PrintToString(SyntheticClicksClusterConfig(), &cluster));
  std::ofstream(dir + "/cluster.pbtxt") << cluster;
}

proto::ClusterConfig SyntheticClicksClusterConfig() {
  proto::ClusterConfig config;
  proto::TableConfig* emb = config.add_tables();
  emb->set_name("emb");
  emb->set_dim(8);
  emb->mutable_initializer()->set_kind(proto::InitializerConfig::NORMAL);
  emb->mutable_initializer()->set_scale(0.3f);
  emb->mutable_optimizer()->mutable_adagrad()->set_learning_rate(0.3f);
  proto::TableConfig* dense = config.add_tables();
  dense->set_name("dense");
  dense->set_dim(64);
  dense->mutable_optimizer()->mutable_adam()->set_learning_rate(0.005f);
  return config;
}

const char kSyntheticClicksJob[] = R"(
model {
  embedding_dim: 8
  sparse_table: "emb"
  dense_table: "dense"
  dupn {
    user_fields: "user_id"
    item_fields: "item_id"
    behavior_column: "history"
    lstm_hidden: 8
    attention_hidden: 8
    user_mlp: [16]
  }
  tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 hidden_sizes: [16] }
  tasks { name: "score" head: REGRESSION label_column: "score" loss_weight: 0.1 }
}
training {
  batch_size: 32
  epochs: 12
  seed: 3
  train_files: "train.tsv"
  eval_files: "eval.tsv"
  metrics_file: "out/metrics.jsonl"
  progress_interval_seconds: 5
  barrier_timeout_seconds: 60
  # Small chunks: the work queue cuts the one training file into many slices.
  chunk_bytes: 8192
}
)";

}  // namespace granary
