// Loading a training job config (common/proto/job.proto) and the dataset config it names.
//
// Every error names the file and, where the problem has one, the line: an unknown column, a
// column of the wrong role, a task without a label, a zero width. A job config never falls
// back to a silent default; optional fields have the documented defaults below.
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

namespace granary {

// Defaults of the job.proto fields of the same names.
inline constexpr char kDefaultSparseTable[] = "emb";
inline constexpr char kDefaultDenseTable[] = "dense";
inline constexpr char kDefaultMetricsFile[] = "metrics.jsonl";
inline constexpr float kDefaultLossWeight = 1.0f;
inline constexpr double kDefaultProgressIntervalSeconds = 5.0;
inline constexpr double kDefaultBarrierTimeoutSeconds = 600.0;

// A job config with its dataset config resolved, and every default filled in (sparse_table,
// dense_table, metrics_file, loss_weight, progress and barrier intervals), so readers of
// `job` never apply defaults themselves.
struct JobSpec {
  proto::JobConfig job;
  proto::DatasetConfig dataset;
};

// Checks `job` against `dataset`: embedding_dim >= 1 and one architecture:
//   dupn: lstm_hidden and attention_hidden >= 1, >= 1 user and item field, each a
//         CATEGORICAL or MULTI_CATEGORICAL column; a SEQUENCE behaviour column; >= 1 user_mlp
//         layer;
//   shared_bottom / mmoe: >= 1 field, each CATEGORICAL, MULTI_CATEGORICAL or a SEQUENCE with a
//         CATEGORICAL step field; >= 1 bottom_mlp / expert_mlp layer; num_experts >= 1;
//   dupn, shared_bottom, mmoe: every numeric_fields entry a NUMERIC column;
// all widths >= 1; >= 1 task, each uniquely named with a head kind and a LABEL column,
// num_classes >= 2 exactly for MULTICLASS, loss_weight >= 0; batch_size and epochs >= 1; >= 1
// train file pattern. InvalidArgument "source:line: reason" (line when `tree` is given) for
// the first violation.
absl::Status ValidateJobConfig(const proto::JobConfig& job, const proto::DatasetConfig& dataset,
                               const std::string& source_name,
                               const google::protobuf::TextFormat::ParseInfoTree* tree);

// The column of `dataset` named `name`, or null.
const proto::ColumnConfig* FindDatasetColumn(const proto::DatasetConfig& dataset,
                                             const std::string& name);

// Parses `path`, loads the dataset config it names (relative to the folder of `path`) with
// LoadDatasetConfig, or validates the inline one, validates the job and fills in defaults.
// NotFound if a file cannot be read; InvalidArgument naming the file and line otherwise.
absl::StatusOr<JobSpec> LoadJobConfig(const std::string& path);

}  // namespace granary

#endif  // GRANARY_WORKER_JOB_CONFIG_H_
