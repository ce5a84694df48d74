#include "worker/dupn_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "worker/job_config.h"
#include "worker/model/embedding_pooling.h"

namespace granary {
namespace {

using model::Matrix;

int32_t RowOf(uint64_t key, DupnInput* input) {
  auto [it, inserted] =
      input->row_of_key.try_emplace(key, static_cast<int32_t>(input->keys.size()));
  if (inserted) input->keys.push_back(key);
  return it->second;
}

model::MultiValuedField AsField(const DupnInput::FieldRows& rows) {
  return model::MultiValuedField{rows.offsets, rows.row_ids, {}};
}

int OutputWidth(const proto::TaskConfig& task) {
  return task.head() == proto::TaskConfig::MULTICLASS ? static_cast<int>(task.num_classes()) : 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DupnModel>> DupnModel::Create(const proto::ModelConfig& model,
                                                             const proto::DatasetConfig& dataset) {
  if (!model.has_dupn()) return absl::InvalidArgumentError("the model is not a DUPN model");
  auto embedded = [&dataset](const auto& names,
                             std::vector<EmbeddedField>* fields) -> absl::Status {
    for (const std::string& name : names) {
      const proto::ColumnConfig* column = FindDatasetColumn(dataset, name);
      if (column == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("no column '", name, "' in the dataset"));
      }
      fields->push_back({name, column->role() == proto::ColumnConfig::MULTI_CATEGORICAL});
    }
    return absl::OkStatus();
  };
  std::vector<EmbeddedField> user_fields, item_fields;
  absl::Status status = embedded(model.dupn().user_fields(), &user_fields);
  if (status.ok()) status = embedded(model.dupn().item_fields(), &item_fields);
  if (!status.ok()) return status;
  const proto::ColumnConfig* behavior = FindDatasetColumn(dataset, model.dupn().behavior_column());
  if (behavior == nullptr || behavior->role() != proto::ColumnConfig::SEQUENCE) {
    return absl::InvalidArgumentError(
        absl::StrCat("no SEQUENCE column '", model.dupn().behavior_column(), "' in the dataset"));
  }
  return std::unique_ptr<DupnModel>(
      new DupnModel(model, std::move(user_fields), std::move(item_fields), *behavior));
}

DupnModel::DupnModel(const proto::ModelConfig& model, std::vector<EmbeddedField> user_fields,
                     std::vector<EmbeddedField> item_fields, const proto::ColumnConfig& behavior)
    : dim_(static_cast<int>(model.embedding_dim())),
      user_fields_(std::move(user_fields)),
      item_fields_(std::move(item_fields)),
      behavior_column_(behavior.name()),
      tasks_(model.tasks().begin(), model.tasks().end()) {
  for (const proto::StepFieldConfig& step : behavior.step_fields()) {
    (step.kind() == proto::StepFieldConfig::NUMERIC ? numeric_steps_ : categorical_steps_)
        .push_back(step.name());
  }
  const proto::DupnConfig& dupn = model.dupn();
  const int step_width =
      static_cast<int>(categorical_steps_.size()) * dim_ + static_cast<int>(numeric_steps_.size());
  const int hidden = static_cast<int>(dupn.lstm_hidden());
  const int item_width = static_cast<int>(item_fields_.size()) * dim_;
  lstm_ = std::make_unique<model::Lstm>(&params_, "behavior_lstm", step_width, hidden);
  attention_ =
      std::make_unique<model::AttentionPooling>(&params_, "behavior_attention", hidden, item_width,
                                                static_cast<int>(dupn.attention_hidden()));
  const int user_width = BuildMlp("user_mlp", static_cast<int>(user_fields_.size()) * dim_ + hidden,
                                  dupn.user_mlp(), &user_mlp_);
  heads_.resize(tasks_.size());
  for (size_t k = 0; k < tasks_.size(); ++k) {
    const std::string name = absl::StrCat("task.", tasks_[k].name());
    int width =
        BuildMlp(name, user_width + item_width, tasks_[k].hidden_sizes(), &heads_[k].hidden);
    heads_[k].out =
        std::make_unique<model::Dense>(&params_, name + ".out", width, OutputWidth(tasks_[k]));
  }
}

int DupnModel::BuildMlp(const std::string& name, int input_dim,
                        const google::protobuf::RepeatedField<uint32_t>& widths, Mlp* mlp) {
  int width = input_dim;
  for (int i = 0; i < widths.size(); ++i) {
    const int next = static_cast<int>(widths[i]);
    mlp->layers.push_back(
        std::make_unique<model::Dense>(&params_, absl::StrCat(name, ".", i), width, next));
    mlp->activations.push_back(std::make_unique<model::Activation>(model::ActivationKind::kRelu));
    width = next;
  }
  return width;
}

const Matrix& DupnModel::MlpForward(Mlp& mlp, const Matrix& input) {
  const Matrix* x = &input;
  for (size_t i = 0; i < mlp.layers.size(); ++i) {
    x = &mlp.activations[i]->Forward(mlp.layers[i]->Forward(*x));
  }
  return *x;
}

const Matrix& DupnModel::MlpBackward(Mlp& mlp, const Matrix& d_output) {
  const Matrix* d = &d_output;
  for (size_t i = mlp.layers.size(); i-- > 0;) {
    d = &mlp.layers[i]->Backward(mlp.activations[i]->Backward(*d));
  }
  return *d;
}

absl::Status DupnModel::PrepareField(const Batch& batch, const EmbeddedField& field,
                                     DupnInput* input, DupnInput::FieldRows* rows) {
  rows->offsets.assign(1, 0);
  rows->row_ids.clear();
  if (field.multi) {
    int index = FindColumn(batch.multi_categoricals, field.column);
    if (index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch has no MULTI_CATEGORICAL column '", field.column, "'"));
    }
    const MultiCategoricalColumn& column = batch.multi_categoricals[index];
    for (int b = 0; b < batch.size; ++b) {
      for (uint32_t i = column.offsets[b]; i < column.offsets[b + 1]; ++i) {
        rows->row_ids.push_back(RowOf(column.keys[i], input));
      }
      rows->offsets.push_back(static_cast<int32_t>(rows->row_ids.size()));
    }
    return absl::OkStatus();
  }
  int index = FindColumn(batch.categoricals, field.column);
  if (index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch has no CATEGORICAL column '", field.column, "'"));
  }
  const CategoricalColumn& column = batch.categoricals[index];
  for (int b = 0; b < batch.size; ++b) {
    if (column.present[b]) rows->row_ids.push_back(RowOf(column.keys[b], input));
    rows->offsets.push_back(static_cast<int32_t>(rows->row_ids.size()));
  }
  return absl::OkStatus();
}

absl::Status DupnModel::Prepare(const Batch& batch, DupnInput* input) const {
  const int n = batch.size;
  input->batch_size = n;
  input->keys.clear();
  input->row_of_key.clear();
  input->user_fields.resize(user_fields_.size());
  input->item_fields.resize(item_fields_.size());
  for (size_t f = 0; f < user_fields_.size(); ++f) {
    absl::Status status = PrepareField(batch, user_fields_[f], input, &input->user_fields[f]);
    if (!status.ok()) return status;
  }
  for (size_t f = 0; f < item_fields_.size(); ++f) {
    absl::Status status = PrepareField(batch, item_fields_[f], input, &input->item_fields[f]);
    if (!status.ok()) return status;
  }

  int index = FindColumn(batch.sequences, behavior_column_);
  if (index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch has no SEQUENCE column '", behavior_column_, "'"));
  }
  const SequenceColumn& sequence = batch.sequences[index];
  input->lengths.resize(n);
  int longest = 0;
  for (int b = 0; b < n; ++b) {
    input->lengths[b] = static_cast<int32_t>(sequence.Length(b));
    longest = std::max(longest, input->lengths[b]);
  }
  // LSTM and attention need at least one (padding) step.
  const int steps = std::max(1, longest);
  input->num_steps = steps;
  input->step_row_ids.resize(categorical_steps_.size());
  for (size_t j = 0; j < categorical_steps_.size(); ++j) {
    const int field = FindColumn(sequence.fields, categorical_steps_[j]);
    if (field < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence '", behavior_column_, "' has no step field '", categorical_steps_[j], "'"));
    }
    const std::vector<uint64_t>& keys = sequence.fields[field].keys;
    std::vector<int32_t>& ids = input->step_row_ids[j];
    ids.assign(static_cast<size_t>(n) * steps, model::kPaddingRow);
    for (int b = 0; b < n; ++b) {
      for (int t = 0; t < input->lengths[b]; ++t) {
        ids[static_cast<size_t>(b) * steps + t] = RowOf(keys[sequence.offsets[b] + t], input);
      }
    }
  }
  input->step_values.resize(numeric_steps_.size());
  for (size_t j = 0; j < numeric_steps_.size(); ++j) {
    const int field = FindColumn(sequence.fields, numeric_steps_[j]);
    if (field < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence '", behavior_column_, "' has no step field '", numeric_steps_[j], "'"));
    }
    const std::vector<float>& values = sequence.fields[field].values;
    std::vector<float>& out = input->step_values[j];
    out.assign(static_cast<size_t>(n) * steps, 0.0f);
    for (int b = 0; b < n; ++b) {
      for (int t = 0; t < input->lengths[b]; ++t) {
        out[static_cast<size_t>(b) * steps + t] = values[sequence.offsets[b] + t];
      }
    }
  }

  input->labels.resize(tasks_.size());
  input->has_label.resize(tasks_.size());
  input->classes.resize(tasks_.size());
  for (size_t k = 0; k < tasks_.size(); ++k) {
    const proto::TaskConfig& task = tasks_[k];
    int label = FindColumn(batch.labels, task.label_column());
    if (label < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch has no LABEL column '", task.label_column(), "'"));
    }
    input->labels[k] = batch.labels[label].values;
    input->has_label[k] = batch.labels[label].present;
    if (task.head() != proto::TaskConfig::MULTICLASS) continue;
    input->classes[k].resize(n);
    for (int b = 0; b < n; ++b) {
      const float value = input->labels[k][b];
      const int32_t id = static_cast<int32_t>(value);
      if (input->has_label[k][b] &&
          (id != value || id < 0 || id >= static_cast<int32_t>(task.num_classes()))) {
        return absl::InvalidArgumentError(absl::StrCat("task '", task.name(), "': label ", value,
                                                       " is not a class id in [0, ",
                                                       task.num_classes(), ")"));
      }
      input->classes[k][b] = input->has_label[k][b] ? id : 0;
    }
  }
  return absl::OkStatus();
}

void DupnModel::Forward(const DupnInput& input, model::ConstMatrixRef rows) {
  const int n = input.batch_size;
  const int steps = input.num_steps;
  const int hidden = lstm_->hidden_dim();
  const int num_categorical = static_cast<int>(categorical_steps_.size());

  step_inputs_.resize(static_cast<Eigen::Index>(steps) * n, lstm_->input_dim());
  for (int j = 0; j < num_categorical; ++j) {
    model::GatherSequence(rows, input.step_row_ids[j], steps,
                          step_inputs_.middleCols(j * dim_, dim_));
  }
  for (size_t j = 0; j < numeric_steps_.size(); ++j) {
    const int col = num_categorical * dim_ + static_cast<int>(j);
    for (int b = 0; b < n; ++b) {
      for (int t = 0; t < steps; ++t) {
        step_inputs_(static_cast<Eigen::Index>(t) * n + b, col) =
            input.step_values[j][static_cast<size_t>(b) * steps + t];
      }
    }
  }
  item_.resize(n, static_cast<Eigen::Index>(item_fields_.size()) * dim_);
  for (size_t f = 0; f < item_fields_.size(); ++f) {
    model::PoolEmbeddings(rows, AsField(input.item_fields[f]), model::Pooling::kMean,
                          item_.middleCols(f * dim_, dim_));
  }
  const int profile_width = static_cast<int>(user_fields_.size()) * dim_;
  user_input_.resize(n, profile_width + hidden);
  for (size_t f = 0; f < user_fields_.size(); ++f) {
    model::PoolEmbeddings(rows, AsField(input.user_fields[f]), model::Pooling::kMean,
                          user_input_.middleCols(f * dim_, dim_));
  }

  const Matrix& states = lstm_->Forward(step_inputs_, input.lengths);
  user_input_.rightCols(hidden) = attention_->Forward(states, item_, input.lengths);
  const Matrix& user_vector = MlpForward(user_mlp_, user_input_);

  head_input_.resize(n, user_vector.cols() + item_.cols());
  head_input_.leftCols(user_vector.cols()) = user_vector;
  head_input_.rightCols(item_.cols()) = item_;
  for (Head& head : heads_) head.output = &head.out->Forward(MlpForward(head.hidden, head_input_));
}

void DupnModel::Backward(const DupnInput& input, std::vector<model::LossValue>* losses,
                         Matrix* d_rows) {
  const int n = input.batch_size;
  params_.ZeroGrads();
  losses->resize(tasks_.size());
  d_head_input_.setZero(n, head_input_.cols());
  for (size_t k = 0; k < tasks_.size(); ++k) {
    Head& head = heads_[k];
    const model::SampleWeighting weighting{{}, input.has_label[k]};
    switch (tasks_[k].head()) {
      case proto::TaskConfig::MULTICLASS:
        (*losses)[k] =
            model::SoftmaxCrossEntropy(*head.output, input.classes[k], weighting, &head.d_output);
        break;
      case proto::TaskConfig::REGRESSION:
        (*losses)[k] =
            model::MeanSquaredError(*head.output, input.labels[k], weighting, &head.d_output);
        break;
      default:
        (*losses)[k] = model::SigmoidBinaryCrossEntropy(*head.output, input.labels[k], weighting,
                                                        &head.d_output);
        break;
    }
    head.d_output *= tasks_[k].loss_weight();
    d_head_input_ += MlpBackward(head.hidden, head.out->Backward(head.d_output));
  }

  const int user_width = static_cast<int>(d_head_input_.cols() - item_.cols());
  d_user_vector_ = d_head_input_.leftCols(user_width);
  const Matrix& d_user_input = MlpBackward(user_mlp_, d_user_vector_);
  const int hidden = lstm_->hidden_dim();
  d_pooled_ = d_user_input.rightCols(hidden);
  attention_->Backward(d_pooled_);
  d_item_ = d_head_input_.rightCols(item_.cols()) + attention_->d_query();
  const Matrix& d_steps = lstm_->Backward(&attention_->d_states(), nullptr);

  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);
  for (size_t f = 0; f < user_fields_.size(); ++f) {
    model::PoolEmbeddingsBackward(d_user_input.middleCols(f * dim_, dim_),
                                  AsField(input.user_fields[f]), model::Pooling::kMean, *d_rows);
  }
  for (size_t f = 0; f < item_fields_.size(); ++f) {
    model::PoolEmbeddingsBackward(d_item_.middleCols(f * dim_, dim_), AsField(input.item_fields[f]),
                                  model::Pooling::kMean, *d_rows);
  }
  for (size_t j = 0; j < categorical_steps_.size(); ++j) {
    model::GatherSequenceBackward(d_steps.middleCols(j * dim_, dim_), input.step_row_ids[j],
                                  input.num_steps, *d_rows);
  }
}

}  // namespace granary
