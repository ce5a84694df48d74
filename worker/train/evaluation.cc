#include "worker/train/evaluation.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "worker/line_source.h"
#include "worker/nn/loss.h"
#include "worker/train/metrics.h"

namespace granary {

std::string PredictionPath(const std::string& dir, int epoch, int worker) {
  return (std::filesystem::path(dir) / absl::StrCat("eval-epoch", epoch, "-worker", worker, ".tsv"))
      .string();
}

absl::StatusOr<std::unique_ptr<PredictionWriter>> PredictionWriter::Open(const std::string& path) {
  std::unique_ptr<PredictionWriter> writer(new PredictionWriter(path, TemporaryPathOf(path)));
  if (!writer->out_)
    return absl::UnavailableError(absl::StrCat("cannot write ", writer->temporary_));
  return writer;
}

PredictionWriter::PredictionWriter(std::string path, std::string temporary)
    : path_(std::move(path)), temporary_(std::move(temporary)), out_(temporary_, std::ios::trunc) {}

void PredictionWriter::Add(const Model& model, const ModelInput& input) {
  const std::vector<proto::TaskConfig>& tasks = model.tasks();
  lines_.clear();
  for (size_t k = 0; k < tasks.size(); ++k) {
    const nn::Matrix& output = model.output(static_cast<int>(k));
    for (int b = 0; b < input.batch_size; ++b) {
      if (!input.has_label[k][b]) continue;
      const float label = input.labels[k][b];
      switch (tasks[k].head()) {
        case proto::TaskConfig::MULTICLASS: {
          Eigen::Index predicted = 0;
          const float top = output.row(b).maxCoeff(&predicted);
          const double log_sum =
              top + std::log((output.row(b).array() - top).exp().cast<double>().sum());
          const double loss = log_sum - output(b, input.classes[k][b]);
          absl::StrAppendFormat(&lines_, "%d\t%d\t%g\t%.9g\n", k, predicted, label, loss);
          break;
        }
        case proto::TaskConfig::REGRESSION:
          absl::StrAppendFormat(&lines_, "%d\t%.9g\t%g\t0\n", k, output(b, 0), label);
          break;
        default: {
          const double p =
              std::clamp(nn::Sigmoid(output(b, 0)), kLogLossEpsilon, 1 - kLogLossEpsilon);
          const double loss = -(label * std::log(p) + (1 - label) * std::log(1 - p));
          absl::StrAppendFormat(&lines_, "%d\t%.9g\t%g\t%.9g\n", k, p, label, loss);
          break;
        }
      }
    }
  }
  out_ << lines_;
}

absl::Status PredictionWriter::Finish() {
  out_.close();
  if (!out_) return absl::DataLossError(absl::StrCat("cannot write ", temporary_));
  return PublishFile(temporary_, path_);
}

absl::StatusOr<std::vector<TaskMetrics>> MergePredictions(
    const std::vector<proto::TaskConfig>& tasks, const std::vector<std::string>& paths) {
  std::vector<std::vector<ScoredLabel>> scored(tasks.size());
  std::vector<double> loss_sum(tasks.size(), 0.0);
  std::vector<int64_t> correct(tasks.size(), 0);
  for (const std::string& path : paths) {
    absl::Status status = ForEachLine(path, [&](std::string_view text, uint64_t number) {
      std::vector<absl::string_view> cells =
          absl::StrSplit(absl::string_view(text.data(), text.size()), '\t');
      int task = -1;
      float score = 0, label = 0;
      double loss = 0;
      if (cells.size() != 4 || !absl::SimpleAtoi(cells[0], &task) || task < 0 ||
          task >= static_cast<int>(tasks.size()) || !absl::SimpleAtof(cells[1], &score) ||
          !absl::SimpleAtof(cells[2], &label) || !absl::SimpleAtod(cells[3], &loss)) {
        return absl::DataLossError(absl::StrCat(path, ":", number, ": bad prediction line"));
      }
      scored[task].push_back({score, label});
      loss_sum[task] += loss;
      correct[task] += score == label;
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
  }
  std::vector<TaskMetrics> merged;
  for (size_t k = 0; k < tasks.size(); ++k) {
    TaskMetrics metrics;
    metrics.task = tasks[k].name();
    metrics.count = static_cast<int64_t>(scored[k].size());
    const double n = static_cast<double>(metrics.count);
    switch (tasks[k].head()) {
      case proto::TaskConfig::MULTICLASS:
        if (metrics.count > 0) {
          metrics.accuracy = static_cast<double>(correct[k]) / n;
          metrics.log_loss = loss_sum[k] / n;
        }
        break;
      case proto::TaskConfig::REGRESSION:
        metrics.rmse = Rmse(scored[k]);
        break;
      default:
        metrics.log_loss = LogLoss(scored[k]);
        metrics.auc = Auc(std::move(scored[k]));
        break;
    }
    merged.push_back(std::move(metrics));
  }
  return merged;
}

std::string JsonNumber(const std::optional<double>& value) {
  return value.has_value() ? absl::StrFormat("%.6f", *value) : "null";
}

std::string TaskMetricsJson(const std::vector<TaskMetrics>& metrics) {
  std::vector<std::string> members;
  for (const TaskMetrics& task : metrics) {
    members.push_back(absl::StrFormat(
        "\"%s\": {\"count\": %d, \"auc\": %s, \"log_loss\": %s, \"accuracy\": %s, \"rmse\": %s}",
        task.task, task.count, JsonNumber(task.auc), JsonNumber(task.log_loss),
        JsonNumber(task.accuracy), JsonNumber(task.rmse)));
  }
  return absl::StrJoin(members, ", ");
}

absl::Status AppendMetricsLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot append to ", path));
  return absl::OkStatus();
}

}  // namespace granary
