#include "worker/job_config.h"

#include <filesystem>

#include "common/config.h"
#include "common/config_location.h"

namespace granary {
namespace {

using google::protobuf::TextFormat;

void FillDefaults(proto::JobConfig* job) {
  FillModelDefaults(job->mutable_model());
  proto::TrainingConfig* training = job->mutable_training();
  if (training->metrics_file().empty()) training->set_metrics_file(kDefaultMetricsFile);
  if (!training->has_progress_interval_seconds()) {
    training->set_progress_interval_seconds(kDefaultProgressIntervalSeconds);
  }
  if (!training->has_barrier_timeout_seconds()) {
    training->set_barrier_timeout_seconds(kDefaultBarrierTimeoutSeconds);
  }
}

}  // namespace

absl::Status ValidateJobConfig(const proto::JobConfig& job, const proto::DatasetConfig& dataset,
                               const std::string& source_name,
                               const TextFormat::ParseInfoTree* tree) {
  const ConfigLocation at(job, tree, source_name);
  if (!job.has_model()) return ConfigLocation::Invalid(source_name, "no model");
  absl::Status status = ValidateModelConfig(job.model(), dataset, at.Nested(job.model(), "model"));
  if (!status.ok()) return status;
  const proto::TrainingConfig& training = job.training();
  const ConfigLocation training_at = at.Nested(training, "training");
  if (training.batch_size() < 1) {
    return ConfigLocation::Invalid(training_at.At("batch_size"), "batch_size must be >= 1");
  }
  if (training.epochs() < 1)
    return ConfigLocation::Invalid(training_at.At("epochs"), "epochs must be >= 1");
  if (training.train_files().empty()) {
    return ConfigLocation::Invalid(at.At("training"), "training needs >= 1 train_files pattern");
  }
  if (training.has_progress_interval_seconds() && !(training.progress_interval_seconds() > 0)) {
    return ConfigLocation::Invalid(training_at.At("progress_interval_seconds"), "must be > 0");
  }
  if (training.has_barrier_timeout_seconds() && !(training.barrier_timeout_seconds() > 0)) {
    return ConfigLocation::Invalid(training_at.At("barrier_timeout_seconds"), "must be > 0");
  }
  if (training.has_max_staleness() && training.max_staleness() < 0) {
    return ConfigLocation::Invalid(
        training_at.At("max_staleness"),
        "max_staleness must be >= 0 (omit it for asynchronous training)");
  }
  return absl::OkStatus();
}

absl::StatusOr<JobSpec> LoadJobConfig(const std::string& path) {
  JobSpec spec;
  TextFormat::ParseInfoTree tree;
  absl::Status status = ParseTextProtoFile(path, &spec.job, &tree);
  if (!status.ok()) return status;
  if (spec.job.has_dataset()) {
    status = ValidateDatasetConfig(spec.job.dataset(), path, nullptr);
    if (!status.ok()) return status;
    spec.dataset = spec.job.dataset();
  } else if (!spec.job.dataset_config().empty()) {
    std::filesystem::path dataset_path(spec.job.dataset_config());
    if (dataset_path.is_relative()) {
      dataset_path = std::filesystem::path(path).parent_path() / dataset_path;
    }
    absl::StatusOr<proto::DatasetConfig> dataset = LoadDatasetConfig(dataset_path.string());
    if (!dataset.ok()) return dataset.status();
    spec.dataset = *std::move(dataset);
  } else {
    return ConfigLocation::Invalid(path, "neither dataset_config nor dataset is set");
  }
  status = ValidateJobConfig(spec.job, spec.dataset, path, &tree);
  if (!status.ok()) return status;
  FillDefaults(&spec.job);
  return spec;
}

}  // namespace granary
