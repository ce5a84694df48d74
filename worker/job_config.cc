#include "worker/job_config.h"

#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "worker/models/retrieval_model.h"

namespace granary {
namespace {

using google::protobuf::Message;
using google::protobuf::TextFormat;

// Where one field of a parsed config stood: a message and its parse tree (null when unknown).
struct Located {
  const Message& message;
  const TextFormat::ParseInfoTree* tree;
  const std::string& source;

  // "source:line" of `field` (element `index` if repeated), or "source". Protobuf records one
  // location per list (`f: [a, b]`), the first element's, so a later element of a list gets
  // the line of the nearest earlier element that has one.
  std::string At(const std::string& field, int index = -1) const {
    const google::protobuf::FieldDescriptor* descriptor =
        message.GetDescriptor()->FindFieldByName(field);
    // A repeated field has locations only per element (protobuf aborts on index -1).
    if (tree == nullptr || descriptor == nullptr || (descriptor->is_repeated() && index < 0)) {
      return source;
    }
    TextFormat::ParseLocation location = tree->GetLocation(descriptor, index);
    for (int earlier = index - 1; location.line < 0 && earlier >= 0; --earlier) {
      location = tree->GetLocation(descriptor, earlier);
    }
    if (location.line < 0) return source;
    return absl::StrCat(source, ":", location.line + 1);
  }
  Located Nested(const Message& child, const std::string& field) const {
    const google::protobuf::FieldDescriptor* descriptor =
        message.GetDescriptor()->FindFieldByName(field);
    return Located{
        child,
        tree == nullptr || descriptor == nullptr ? nullptr : tree->GetTreeForNested(descriptor, -1),
        source};
  }
};

absl::Status Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status ValidateEmbeddedFields(const google::protobuf::RepeatedPtrField<std::string>& fields,
                                    const std::string& field_name, const Located& at,
                                    const proto::DatasetConfig& dataset) {
  if (fields.empty()) return Invalid(at.At(field_name), absl::StrCat(field_name, " is empty"));
  for (int i = 0; i < fields.size(); ++i) {
    const proto::ColumnConfig* column = FindDatasetColumn(dataset, fields[i]);
    if (column == nullptr) {
      return Invalid(at.At(field_name, i),
                     absl::StrCat("no column '", fields[i], "' in the dataset config"));
    }
    if (column->role() != proto::ColumnConfig::CATEGORICAL &&
        column->role() != proto::ColumnConfig::MULTI_CATEGORICAL) {
      return Invalid(at.At(field_name, i), absl::StrCat("column '", fields[i],
                                                        "' is not CATEGORICAL or "
                                                        "MULTI_CATEGORICAL"));
    }
  }
  return absl::OkStatus();
}

// Columns a model reads as numbers: each must be a NUMERIC column. An empty list is valid.
absl::Status ValidateNumericFields(const google::protobuf::RepeatedPtrField<std::string>& fields,
                                   const Located& at, const proto::DatasetConfig& dataset) {
  for (int i = 0; i < fields.size(); ++i) {
    const proto::ColumnConfig* column = FindDatasetColumn(dataset, fields[i]);
    if (column == nullptr) {
      return Invalid(
          at.At("numeric_fields", i),
          absl::StrCat("numeric_fields: no column '", fields[i], "' in the dataset config"));
    }
    if (column->role() != proto::ColumnConfig::NUMERIC) {
      return Invalid(at.At("numeric_fields", i),
                     absl::StrCat("numeric_fields: column '", fields[i], "' is not NUMERIC"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDupn(const proto::DupnConfig& dupn, const Located& at,
                          const proto::DatasetConfig& dataset) {
  absl::Status status = ValidateEmbeddedFields(dupn.user_fields(), "user_fields", at, dataset);
  if (status.ok()) status = ValidateEmbeddedFields(dupn.item_fields(), "item_fields", at, dataset);
  if (status.ok()) status = ValidateNumericFields(dupn.numeric_fields(), at, dataset);
  if (!status.ok()) return status;
  const proto::ColumnConfig* behavior = FindDatasetColumn(dataset, dupn.behavior_column());
  if (behavior == nullptr || behavior->role() != proto::ColumnConfig::SEQUENCE) {
    return Invalid(at.At("behavior_column"),
                   absl::StrCat("behavior_column '", dupn.behavior_column(),
                                "' is not a SEQUENCE column of the dataset config"));
  }
  if (dupn.lstm_hidden() < 1) return Invalid(at.At("lstm_hidden"), "lstm_hidden must be >= 1");
  if (dupn.attention_hidden() < 1) {
    return Invalid(at.At("attention_hidden"), "attention_hidden must be >= 1");
  }
  if (dupn.user_mlp().empty()) return Invalid(at.source, "user_mlp needs >= 1 layer");
  for (int i = 0; i < dupn.user_mlp_size(); ++i) {
    if (dupn.user_mlp(i) < 1) return Invalid(at.At("user_mlp", i), "layer widths must be >= 1");
  }
  return absl::OkStatus();
}

// A layer list that must have >= 1 layer, each >= 1 wide.
absl::Status ValidateWidths(const google::protobuf::RepeatedField<uint32_t>& widths,
                            const std::string& field_name, const Located& at) {
  if (widths.empty())
    return Invalid(at.At(field_name), absl::StrCat(field_name, " needs >= 1 layer"));
  for (int i = 0; i < widths.size(); ++i) {
    if (widths[i] < 1) return Invalid(at.At(field_name, i), "layer widths must be >= 1");
  }
  return absl::OkStatus();
}

// The input fields of shared bottom and MMoE: CATEGORICAL, MULTI_CATEGORICAL or SEQUENCE
// columns (a sequence needs a CATEGORICAL step field to embed).
absl::Status ValidatePooledFields(const google::protobuf::RepeatedPtrField<std::string>& fields,
                                  const Located& at, const proto::DatasetConfig& dataset) {
  if (fields.empty()) return Invalid(at.At("fields"), "fields is empty");
  for (int i = 0; i < fields.size(); ++i) {
    const proto::ColumnConfig* column = FindDatasetColumn(dataset, fields[i]);
    if (column == nullptr) {
      return Invalid(at.At("fields", i),
                     absl::StrCat("no column '", fields[i], "' in the dataset config"));
    }
    bool embeddable = column->role() == proto::ColumnConfig::CATEGORICAL ||
                      column->role() == proto::ColumnConfig::MULTI_CATEGORICAL;
    for (const proto::StepFieldConfig& step : column->step_fields()) {
      embeddable |= column->role() == proto::ColumnConfig::SEQUENCE &&
                    step.kind() == proto::StepFieldConfig::CATEGORICAL;
    }
    if (!embeddable) {
      return Invalid(at.At("fields", i),
                     absl::StrCat("column '", fields[i],
                                  "' is not CATEGORICAL, MULTI_CATEGORICAL or a SEQUENCE with a "
                                  "CATEGORICAL step field"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSharedBottom(const proto::SharedBottomConfig& config, const Located& at,
                                  const proto::DatasetConfig& dataset) {
  absl::Status status = ValidatePooledFields(config.fields(), at, dataset);
  if (status.ok()) status = ValidateNumericFields(config.numeric_fields(), at, dataset);
  if (!status.ok()) return status;
  return ValidateWidths(config.bottom_mlp(), "bottom_mlp", at);
}

absl::Status ValidateMmoe(const proto::MmoeConfig& config, const Located& at,
                          const proto::DatasetConfig& dataset) {
  absl::Status status = ValidatePooledFields(config.fields(), at, dataset);
  if (status.ok()) status = ValidateNumericFields(config.numeric_fields(), at, dataset);
  if (!status.ok()) return status;
  if (config.num_experts() < 1) return Invalid(at.At("num_experts"), "num_experts must be >= 1");
  return ValidateWidths(config.expert_mlp(), "expert_mlp", at);
}

absl::Status ValidateTask(const proto::TaskConfig& task, const Located& at,
                          const proto::DatasetConfig& dataset) {
  if (task.head() == proto::TaskConfig::HEAD_KIND_UNSPECIFIED) {
    return Invalid(at.source, absl::StrCat("task '", task.name(), "' has no head kind"));
  }
  const proto::ColumnConfig* label = FindDatasetColumn(dataset, task.label_column());
  if (label == nullptr || label->role() != proto::ColumnConfig::LABEL) {
    return Invalid(at.At("label_column"),
                   absl::StrCat("task '", task.name(), "': label_column '", task.label_column(),
                                "' is not a LABEL column of the dataset config"));
  }
  const bool multiclass = task.head() == proto::TaskConfig::MULTICLASS;
  if (multiclass ? task.num_classes() < 2 : task.num_classes() != 0) {
    return Invalid(at.At("num_classes"),
                   absl::StrCat("task '", task.name(), "': num_classes must be ",
                                multiclass ? ">= 2 for MULTICLASS" : "unset unless MULTICLASS"));
  }
  if (task.has_loss_weight() && !(task.loss_weight() >= 0)) {
    return Invalid(at.At("loss_weight"),
                   absl::StrCat("task '", task.name(), "': loss_weight must be >= 0"));
  }
  for (int i = 0; i < task.hidden_sizes_size(); ++i) {
    if (task.hidden_sizes(i) < 1) {
      return Invalid(at.At("hidden_sizes", i),
                     absl::StrCat("task '", task.name(), "': layer widths must be >= 1"));
    }
  }
  return absl::OkStatus();
}

void FillDefaults(proto::JobConfig* job) {
  proto::ModelConfig* model = job->mutable_model();
  if (model->sparse_table().empty()) model->set_sparse_table(kDefaultSparseTable);
  if (model->dense_table().empty()) model->set_dense_table(kDefaultDenseTable);
  for (proto::TaskConfig& task : *model->mutable_tasks()) {
    if (!task.has_loss_weight()) task.set_loss_weight(kDefaultLossWeight);
  }
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

const proto::ColumnConfig* FindDatasetColumn(const proto::DatasetConfig& dataset,
                                             const std::string& name) {
  for (const proto::ColumnConfig& column : dataset.columns()) {
    if (column.name() == name) return &column;
  }
  return nullptr;
}

absl::Status ValidateJobConfig(const proto::JobConfig& job, const proto::DatasetConfig& dataset,
                               const std::string& source_name,
                               const TextFormat::ParseInfoTree* tree) {
  const Located at{job, tree, source_name};
  const proto::ModelConfig& model = job.model();
  const Located model_at = at.Nested(model, "model");
  if (!job.has_model()) return Invalid(source_name, "no model");
  if (model.embedding_dim() < 1) {
    return Invalid(model_at.At("embedding_dim"), "embedding_dim must be >= 1");
  }
  absl::Status status;
  switch (model.architecture_case()) {
    case proto::ModelConfig::kDupn:
      status = ValidateDupn(model.dupn(), model_at.Nested(model.dupn(), "dupn"), dataset);
      break;
    case proto::ModelConfig::kSharedBottom:
      status = ValidateSharedBottom(
          model.shared_bottom(), model_at.Nested(model.shared_bottom(), "shared_bottom"), dataset);
      break;
    case proto::ModelConfig::kMmoe:
      status = ValidateMmoe(model.mmoe(), model_at.Nested(model.mmoe(), "mmoe"), dataset);
      break;
    case proto::ModelConfig::kTwoTower:
    case proto::ModelConfig::kDat:
    case proto::ModelConfig::kAtnn:
      status = ValidateRetrievalModel(model, dataset);
      if (!status.ok()) status = Invalid(at.At("model"), std::string(status.message()));
      break;
    default:
      return Invalid(
          at.At("model"),
          "model has no architecture (dupn, shared_bottom, mmoe, two_tower, dat or atnn)");
  }
  if (!status.ok()) return status;
  if (model.tasks().empty()) return Invalid(at.At("model"), "model has no tasks");
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < model.tasks_size(); ++i) {
    const proto::TaskConfig& task = model.tasks(i);
    const google::protobuf::FieldDescriptor* tasks_field =
        model.GetDescriptor()->FindFieldByName("tasks");
    const Located task_at{
        task, model_at.tree == nullptr ? nullptr : model_at.tree->GetTreeForNested(tasks_field, i),
        source_name};
    if (task.name().empty() || !names.insert(task.name()).second) {
      return Invalid(model_at.At("tasks", i),
                     absl::StrCat("task name '", task.name(), "' is empty or repeated"));
    }
    status = ValidateTask(task, task_at, dataset);
    if (!status.ok()) return status;
  }
  const proto::TrainingConfig& training = job.training();
  const Located training_at = at.Nested(training, "training");
  if (training.batch_size() < 1) {
    return Invalid(training_at.At("batch_size"), "batch_size must be >= 1");
  }
  if (training.epochs() < 1) return Invalid(training_at.At("epochs"), "epochs must be >= 1");
  if (training.train_files().empty()) {
    return Invalid(at.At("training"), "training needs >= 1 train_files pattern");
  }
  if (training.has_progress_interval_seconds() && !(training.progress_interval_seconds() > 0)) {
    return Invalid(training_at.At("progress_interval_seconds"), "must be > 0");
  }
  if (training.has_barrier_timeout_seconds() && !(training.barrier_timeout_seconds() > 0)) {
    return Invalid(training_at.At("barrier_timeout_seconds"), "must be > 0");
  }
  if (training.has_max_staleness() && training.max_staleness() < 0) {
    return Invalid(training_at.At("max_staleness"),
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
    return Invalid(path, "neither dataset_config nor dataset is set");
  }
  status = ValidateJobConfig(spec.job, spec.dataset, path, &tree);
  if (!status.ok()) return status;
  FillDefaults(&spec.job);
  return spec;
}

}  // namespace granary
