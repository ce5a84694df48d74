#include "worker/train/evaluation.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

proto::TaskConfig Task(const std::string& name, proto::TaskConfig::HeadKind head) {
  proto::TaskConfig task;
  task.set_name(name);
  task.set_head(head);
  return task;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(EvaluationTest, PredictionPathIsPerEpochAndWorker) {
  EXPECT_EQ(PredictionPath("/out", 3, 1), "/out/eval-epoch3-worker1.tsv");
}

// Metrics are computed over every worker's lines together, not averaged per worker.
TEST(EvaluationTest, MergePredictionsComputesMetricsOverEveryFile) {
  const std::string dir = MakeTempDir("evaluation_test");
  const std::vector<proto::TaskConfig> tasks = {Task("click", proto::TaskConfig::BINARY),
                                                Task("genre", proto::TaskConfig::MULTICLASS),
                                                Task("rating", proto::TaskConfig::REGRESSION)};
  // Worker 0 ranks its positive below its negative; worker 1 ranks both right: AUC over the
  // four is 3/4, where the mean of the workers' AUCs would be 1/2.
  WriteFile(PredictionPath(dir, 1, 0),
            "0\t0.3\t1\t0.5\n0\t0.6\t0\t0.5\n1\t2\t2\t0.25\n2\t3.5\t4\t0\n");
  WriteFile(PredictionPath(dir, 1, 1), "0\t0.9\t1\t0.5\n0\t0.1\t0\t0.5\n1\t0\t1\t0.75\n");
  absl::StatusOr<std::vector<TaskMetrics>> merged =
      MergePredictions(tasks, {PredictionPath(dir, 1, 0), PredictionPath(dir, 1, 1)});
  ASSERT_TRUE(merged.ok()) << merged.status();
  ASSERT_EQ(merged->size(), 3u);
  const TaskMetrics& click = (*merged)[0];
  EXPECT_EQ(click.task, "click");
  EXPECT_EQ(click.count, 4);
  ASSERT_TRUE(click.auc.has_value());
  EXPECT_DOUBLE_EQ(*click.auc, 0.75);
  EXPECT_TRUE(click.log_loss.has_value());
  EXPECT_FALSE(click.accuracy.has_value());
  const TaskMetrics& genre = (*merged)[1];
  EXPECT_EQ(genre.count, 2);
  EXPECT_DOUBLE_EQ(*genre.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(*genre.log_loss, 0.5);  // the mean of the lines' losses
  EXPECT_FALSE(genre.auc.has_value());
  const TaskMetrics& rating = (*merged)[2];
  EXPECT_EQ(rating.count, 1);
  EXPECT_DOUBLE_EQ(*rating.rmse, 0.5);
  std::filesystem::remove_all(dir);
}

TEST(EvaluationTest, MergePredictionsNamesMissingFilesAndBadLines) {
  const std::string dir = MakeTempDir("evaluation_test");
  const std::vector<proto::TaskConfig> tasks = {Task("click", proto::TaskConfig::BINARY)};
  absl::StatusOr<std::vector<TaskMetrics>> merged = MergePredictions(tasks, {dir + "/missing"});
  EXPECT_TRUE(absl::IsNotFound(merged.status())) << merged.status();
  EXPECT_NE(merged.status().message().find(dir + "/missing"), std::string::npos);

  // Task 1 does not exist.
  WriteFile(dir + "/bad.tsv", "0\t0.5\t1\t0.7\n1\t0.5\t1\t0.7\n");
  merged = MergePredictions(tasks, {dir + "/bad.tsv"});
  EXPECT_TRUE(absl::IsDataLoss(merged.status())) << merged.status();
  EXPECT_NE(merged.status().message().find(dir + "/bad.tsv:2"), std::string::npos)
      << merged.status();
  std::filesystem::remove_all(dir);
}

TEST(EvaluationTest, PredictionWriterPublishesOnlyOnFinish) {
  const std::string dir = MakeTempDir("evaluation_test");
  const std::string path = PredictionPath(dir, 0, 0);
  absl::StatusOr<std::unique_ptr<PredictionWriter>> writer = PredictionWriter::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_FALSE(std::filesystem::exists(path));
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(ReadFile(path), "");

  writer = PredictionWriter::Open(dir + "/no/such/folder/predictions.tsv");
  EXPECT_TRUE(absl::IsUnavailable(writer.status())) << writer.status();
  std::filesystem::remove_all(dir);
}

TEST(EvaluationTest, MetricsJsonAndLines) {
  EXPECT_EQ(JsonNumber(std::nullopt), "null");
  EXPECT_EQ(JsonNumber(0.25), "0.250000");
  TaskMetrics click;
  click.task = "click";
  click.count = 7;
  click.auc = 0.5;
  EXPECT_EQ(TaskMetricsJson({click, click}),
            "\"click\": {\"count\": 7, \"auc\": 0.500000, \"log_loss\": null, \"accuracy\": null, "
            "\"rmse\": null}, \"click\": {\"count\": 7, \"auc\": 0.500000, \"log_loss\": null, "
            "\"accuracy\": null, \"rmse\": null}");

  const std::string dir = MakeTempDir("evaluation_test");
  ASSERT_TRUE(AppendMetricsLine(dir + "/metrics.jsonl", "{\"epoch\": 1}").ok());
  ASSERT_TRUE(AppendMetricsLine(dir + "/metrics.jsonl", "{\"epoch\": 2}").ok());
  EXPECT_EQ(ReadFile(dir + "/metrics.jsonl"), "{\"epoch\": 1}\n{\"epoch\": 2}\n");
  absl::Status status = AppendMetricsLine(dir + "/no/such/folder/metrics.jsonl", "{}");
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace granary
