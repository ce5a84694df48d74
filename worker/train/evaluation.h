// Pointwise evaluation over every worker's predictions together (DESIGN.md "Daily incremental
// training": metrics are merged, not averaged per worker).
//
// Each worker runs the model over its share of the evaluation data and writes one prediction
// line per labelled sample and task to a file of its own, published atomically
// (PredictionWriter, at PredictionPath(dir, epoch, rank)); once every worker's file is there,
// one worker reads them all (MergePredictions) and computes each task's exact metrics:
// BINARY: AUC and log loss; MULTICLASS: accuracy and log loss; REGRESSION: RMSE.
//
// A prediction line is "<task index>\t<score>\t<label>\t<log loss>": score is the probability
// (BINARY), the predicted class (MULTICLASS) or the prediction (REGRESSION); log loss is the
// sample's cross-entropy (0 for REGRESSION).
//
// The metrics file (the job's TrainingConfig.metrics_file) gets one JSON object per line
// (AppendMetricsLine); TaskMetricsJson and JsonNumber format the parts of those lines.
//
// Thread-compatible: a PredictionWriter is used by one thread; the functions are pure
// functions of their arguments and the files they name.
#ifndef GRANARY_WORKER_TRAIN_EVALUATION_H_
#define GRANARY_WORKER_TRAIN_EVALUATION_H_

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/job.pb.h"
#include "worker/models/model.h"

namespace granary {

// The merged evaluation of one task. Metrics undefined for the data (no labels; AUC without
// both classes) are nullopt.
struct TaskMetrics {
  std::string task;
  int64_t count = 0;  // labelled evaluation samples, over all workers
  std::optional<double> auc;
  std::optional<double> log_loss;
  std::optional<double> accuracy;
  std::optional<double> rmse;
};

// The prediction file of worker `worker` for epoch `epoch` in folder `dir`:
// <dir>/eval-epoch<epoch>-worker<worker>.tsv.
std::string PredictionPath(const std::string& dir, int epoch, int worker);

// Writes one worker's prediction file: to a temporary file first, published under its name
// by Finish, so that a reader never sees a partial file. Destroyed without Finish (the
// evaluation failed), it publishes nothing.
class PredictionWriter {
 public:
  // Unavailable naming the temporary file if it cannot be created.
  static absl::StatusOr<std::unique_ptr<PredictionWriter>> Open(const std::string& path);
  PredictionWriter(const PredictionWriter&) = delete;
  PredictionWriter& operator=(const PredictionWriter&) = delete;

  // Writes the predictions of every labelled sample of `input` for each of the model's tasks.
  // REQUIRES: the model's last Forward was on `input`.
  void Add(const Model& model, const ModelInput& input);
  // Closes the file and publishes it (common/atomic_file.h). DataLoss naming the file if a
  // write failed, or the error of publishing it.
  absl::Status Finish();

 private:
  PredictionWriter(std::string path, std::string temporary);

  const std::string path_;
  const std::string temporary_;
  std::ofstream out_;
  std::string lines_;  // one batch's lines, reused
};

// Reads the prediction files `paths` and computes the metrics of each of `tasks` (in that
// order) over all of them. NotFound naming a file that cannot be read; DataLoss naming the
// file and line of a line that is not a prediction of one of `tasks`.
absl::StatusOr<std::vector<TaskMetrics>> MergePredictions(
    const std::vector<proto::TaskConfig>& tasks, const std::vector<std::string>& paths);

// `value` as a JSON number with 6 decimals, or null.
std::string JsonNumber(const std::optional<double>& value);

// The members "<task>": {"count": ..., "auc": ..., "log_loss": ..., "accuracy": ..., "rmse":
// ...} of every task, joined by ", " (the inside of a JSON object).
std::string TaskMetricsJson(const std::vector<TaskMetrics>& metrics);

// Appends `line` and a newline to the metrics file at `path`. DataLoss naming the file if the
// line cannot be written.
absl::Status AppendMetricsLine(const std::string& path, const std::string& line);

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_EVALUATION_H_
