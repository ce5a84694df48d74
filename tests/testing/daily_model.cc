#include "tests/testing/daily_model.h"

#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace granary {
namespace daily_model {

namespace {

constexpr char kClusterConfigTemplate[] = R"(
tables {
  name: "emb"
  dim: 2
  initializer { kind: NORMAL scale: 0.1 seed: 7 }
  optimizer { sgd { learning_rate: 0.5 } }
  eviction { $EVICTION }
}
tables {
  name: "dense"
  dim: 32
  initializer { kind: ZEROS }
  optimizer { adam { learning_rate: 0.01 } }
}
)";

}  // namespace

const char kJobConfig[] = R"(
dataset {
  columns { name: "click" role: LABEL }
  columns { name: "id" role: CATEGORICAL }
}
model {
  embedding_dim: 2
  sparse_table: "emb"
  dense_table: "dense"
  shared_bottom { fields: ["id"] bottom_mlp: [4] }
  tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 hidden_sizes: [4] }
}
training {
  batch_size: 16
  epochs: 1
  seed: 1
  train_files: "part-*"
  eval_files: "part-*"
  metrics_file: "metrics.jsonl"
  barrier_timeout_seconds: 60
}
)";

std::string ClusterConfig(const std::string& eviction) {
  return absl::StrReplaceAll(kClusterConfigTemplate, {{"$EVICTION", eviction}});
}

uint64_t IdKey(int id) { return FeatureKey(FieldSeed("id"), std::to_string(id)); }

void WriteModelFiles(const std::string& root, const std::string& cluster_config,
                     const std::vector<std::string>& days) {
  std::ofstream(root + "/cluster.pbtxt") << cluster_config;
  std::ofstream(root + "/job.pbtxt") << kJobConfig;
  for (size_t d = 0; d < days.size(); ++d) {
    std::filesystem::create_directories(root + "/data/" + days[d]);
    std::ofstream part(root + "/data/" + days[d] + "/part-00000");
    part << "click\tid\n";
    for (int r = 0; r < kRowsPerId; ++r) {
      for (int id = kDrift * d; id < static_cast<int>(kDrift * d) + kIdsPerDay; ++id) {
        part << (id + r) % 2 << "\t" << id << "\n";
      }
    }
  }
}

int RunDay(const DayRun& run, const std::string& day, const std::vector<std::string>& more,
           std::string* log) {
  std::vector<std::string> argv = {std::string(GRANARY_SOURCE_DIR) + "/launch/daily.sh",
                                   "--date=" + day,
                                   "--data_root=" + run.root + "/data",
                                   "--model_dir=" + run.model_dir,
                                   "--config=" + run.root + "/job.pbtxt",
                                   "--cluster_config=" + run.root + "/cluster.pbtxt",
                                   "--servers=" + std::to_string(run.servers),
                                   "--workers=" + std::to_string(run.workers),
                                   std::string("--bin_dir=") + GRANARY_BINARY_DIR,
                                   "--timeout=" + std::to_string(kDailyTimeoutSeconds)};
  argv.insert(argv.end(), more.begin(), more.end());
  if (!run.node_flags.empty()) {
    argv.push_back("--");
    argv.insert(argv.end(), run.node_flags.begin(), run.node_flags.end());
  }
  static int runs = 0;
  const std::string log_path = absl::StrCat(run.root, "/daily-", day, "-", ++runs, ".log");
  absl::StatusOr<ChildProcess> daily = ChildProcess::Start(argv, log_path);
  EXPECT_TRUE(daily.ok()) << daily.status();
  if (!daily.ok()) return -1;
  std::optional<int> code = daily->WaitForExit(kDayTimeout);
  *log = daily->ReadLog();
  EXPECT_TRUE(code.has_value()) << "daily.sh " << day << " did not finish:\n" << *log;
  return code.value_or(-1);
}

}  // namespace daily_model
}  // namespace granary
