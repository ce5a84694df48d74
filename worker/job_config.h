// Loading a training job config (common/proto/job.proto) and the dataset config it names.
//
// Every error names the file and, where the problem has one, the line: an unknown column, a
// column of the wrong role, a task without a label, a zero width. A job config never falls
// back to a silent default; optional fields have the documented defaults: the model's in
// worker/models/model_config.h, the training's below.
//
// Thread-safe: pure functions of their arguments and the file system.
#ifndef GRANARY_WORKER_JOB_CONFIG_H_
#define GRANARY_WORKER_JOB_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "google/protobuf/text_format.h"
#include "worker/models/model_config.h"

namespace granary {

// Defaults of the TrainingConfig fields of the same names.
inline constexpr char kDefaultMetricsFile[] = "metrics.jsonl";
inline constexpr double kDefaultProgressIntervalSeconds = 5.0;
inline constexpr double kDefaultBarrierTimeoutSeconds = 600.0;

// A job config with its dataset config resolved, and every default filled in (the model's by
// FillModelDefaults; metrics_file, progress and barrier intervals), so readers of `job` never
// apply defaults themselves.
struct JobSpec {
  proto::JobConfig job;
  proto::DatasetConfig dataset;
};

// Checks `job` against `dataset`: a model valid by ValidateModelConfig (the rules of every
// architecture and task); batch_size and epochs >= 1; >= 1 train file pattern; positive
// progress and barrier intervals when set; max_staleness >= 0 when set. InvalidArgument
// "source:line: reason" (line when `tree` is given) for the first violation.
absl::Status ValidateJobConfig(const proto::JobConfig& job, const proto::DatasetConfig& dataset,
                               const std::string& source_name,
                               const google::protobuf::TextFormat::ParseInfoTree* tree);

// Parses `path`, loads the dataset config it names (relative to the folder of `path`) with
// LoadDatasetConfig, or validates the inline one, validates the job and fills in defaults.
// NotFound if a file cannot be read; InvalidArgument naming the file and line otherwise.
absl::StatusOr<JobSpec> LoadJobConfig(const std::string& path);

}  // namespace granary

#endif  // GRANARY_WORKER_JOB_CONFIG_H_
