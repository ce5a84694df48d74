// End to end: granary_describe's configs for data the project has never seen. The synthetic
// stream of tests/bench/synthetic_stream.py (a planted model) is described from its first file;
// the written job and cluster configs, loaded as the worker and the scheduler load them, train
// on an in-process cluster (1 server, 1 worker, real TCP) and must learn every task: clearly
// above chance, and never above the planted model's ceiling.
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/in_process_cluster.h"
#include "tests/testing/temp_dir.h"
#include "worker/job_config.h"
#include "worker/tools/describe.h"
#include "worker/train/trainer.h"

namespace granary {
namespace {

// A stream small enough for a test: the planted effects of a few users and items are learnable
// within a few epochs.
constexpr int kRows = 30000;
constexpr int kUsers = 300;
constexpr int kItems = 200;
constexpr absl::Duration kGeneratorTimeout = absl::Seconds(120);
// Bars on the eval file: AUC well above chance, purchase_power accuracy above always
// predicting the most frequent class (the planted tiers give it about 0.45).
constexpr double kMinClickAuc = 0.65;
constexpr double kMinPurchaseAuc = 0.6;
constexpr double kMinPowerAccuracy = 0.5;
// The planted model's AUC is the ceiling up to the noise of a finite eval file.
constexpr double kCeilingSlack = 0.02;

// bayes.json's eval entry of `task`: its "auc_exact" (or "accuracy").
double BayesEval(const std::string& bayes_json, const std::string& task, const std::string& key) {
  const size_t eval = bayes_json.find("\"eval\"");
  const size_t at = bayes_json.find(absl::StrCat("\"", task, "\""), eval);
  std::smatch match;
  const std::string rest = bayes_json.substr(at);
  if (!std::regex_search(rest, match, std::regex("\"" + key + "\": ([0-9.]+)"))) return -1;
  double value = -1;
  EXPECT_TRUE(absl::SimpleAtod(match[1].str(), &value));
  return value;
}

TEST(DescribeTrainTest, DescribedConfigsTrainTheSyntheticStream) {
  const std::string dir = MakeTempDir("describe_train_test");
  const std::string data = dir + "/data";
  absl::StatusOr<ChildProcess> generator = ChildProcess::Start(
      {"/usr/bin/python3", std::string(GRANARY_SOURCE_DIR) + "/tests/bench/synthetic_stream.py",
       "--output_dir=" + data, absl::StrCat("--rows=", kRows), absl::StrCat("--users=", kUsers),
       absl::StrCat("--items=", kItems), "--seed=3"},
      dir + "/generator.log");
  ASSERT_TRUE(generator.ok()) << generator.status();
  ASSERT_EQ(generator->WaitForExit(kGeneratorTimeout), 0) << generator->ReadLog();

  DescribeRun run;
  run.input = data + "/train-00.tsv";
  run.output_dir = dir + "/configs";
  absl::StatusOr<std::vector<std::string>> report = Describe(run);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::StatusOr<JobSpec> spec = LoadJobConfig(run.output_dir + "/" + kDescribedJobFile);
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<proto::ClusterConfig> cluster_config =
      LoadClusterConfig(run.output_dir + "/" + kDescribedClusterFile);
  ASSERT_TRUE(cluster_config.ok()) << cluster_config.status();
  // The stream has a behaviour sequence whose items are the target items' and skewed counts.
  ASSERT_TRUE(spec->job.model().has_dupn());
  for (const proto::ColumnConfig& column : spec->dataset.columns()) {
    if (column.name() == "item_price") {
      EXPECT_TRUE(column.transform().log1p());
    }
  }

  InProcessClusterOptions options;
  options.num_servers = 1;
  options.num_workers = 1;
  options.config = *cluster_config;
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  TrainerOptions trainer_options;
  trainer_options.data_dir = data;
  trainer_options.output_dir = dir + "/out";
  std::vector<EpochReport> reports;
  absl::Status status;
  std::thread worker([&] {
    Trainer trainer(*spec, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
    status = trainer.Run(&reports);
  });
  worker.join();
  cluster.Stop();
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_FALSE(reports.empty());
  const std::vector<TaskMetrics>& eval = reports.back().eval;
  ASSERT_EQ(eval.size(), 3u);
  const std::string bayes = ReadFile(data + "/bayes.json");
  EXPECT_EQ(eval[0].task, "click");
  ASSERT_TRUE(eval[0].auc.has_value());
  EXPECT_GE(*eval[0].auc, kMinClickAuc);
  EXPECT_LE(*eval[0].auc, BayesEval(bayes, "click", "auc_realized") + kCeilingSlack);
  EXPECT_EQ(eval[1].task, "purchase");
  ASSERT_TRUE(eval[1].auc.has_value());
  EXPECT_GE(*eval[1].auc, kMinPurchaseAuc);
  EXPECT_LE(*eval[1].auc, BayesEval(bayes, "purchase", "auc_realized") + kCeilingSlack);
  EXPECT_EQ(eval[2].task, "purchase_power");
  ASSERT_TRUE(eval[2].accuracy.has_value());
  EXPECT_GE(*eval[2].accuracy, kMinPowerAccuracy);
  for (const std::string& line : *report) std::cout << line << "\n";
  std::cout << "click AUC " << *eval[0].auc << ", purchase AUC " << *eval[1].auc
            << ", purchase_power accuracy " << *eval[2].accuracy << "\n";
}

}  // namespace
}  // namespace granary
