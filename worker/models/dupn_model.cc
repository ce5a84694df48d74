#include "worker/models/dupn_model.h"

#include <algorithm>
#include <cmath>

#include "worker/models/model_config.h"
#include "worker/models/one_user_batch.h"
#include "worker/models/sequence_steps.h"
#include "worker/nn/embedding_pooling.h"

namespace granary {
using nn::Matrix;

absl::StatusOr<std::unique_ptr<DupnModel>> DupnModel::Create(const proto::ModelConfig& model,
                                                             const proto::DatasetConfig& dataset) {
  if (!model.has_dupn()) return absl::InvalidArgumentError("the model is not a DUPN model");
  absl::StatusOr<EmbeddedFields> user_fields =
      EmbeddedFields::Create(model.dupn().user_fields(), dataset);
  if (!user_fields.ok()) return user_fields.status();
  absl::StatusOr<EmbeddedFields> item_fields =
      EmbeddedFields::Create(model.dupn().item_fields(), dataset);
  if (!item_fields.ok()) return item_fields.status();
  absl::StatusOr<NumericFields> numeric_fields =
      NumericFields::Create(model.dupn().numeric_fields(), dataset);
  if (!numeric_fields.ok()) return numeric_fields.status();
  absl::StatusOr<const proto::ColumnConfig*> behavior =
      ColumnFor(dataset, model.dupn().behavior_column(), ColumnUse::kSequence);
  if (!behavior.ok()) return behavior.status();
  return std::unique_ptr<DupnModel>(new DupnModel(model, *std::move(user_fields),
                                                  *std::move(item_fields),
                                                  *std::move(numeric_fields), **behavior));
}

DupnModel::DupnModel(const proto::ModelConfig& model, EmbeddedFields user_fields,
                     EmbeddedFields item_fields, NumericFields numeric_fields,
                     const proto::ColumnConfig& behavior)
    : MultiTaskModel(model),
      user_fields_(std::move(user_fields)),
      item_fields_(std::move(item_fields)),
      numeric_fields_(std::move(numeric_fields)),
      behavior_column_(behavior.name()) {
  for (const proto::StepFieldConfig& step : behavior.step_fields()) {
    (step.kind() == proto::StepFieldConfig::NUMERIC ? numeric_steps_ : categorical_steps_)
        .push_back(step.name());
  }
  const proto::DupnConfig& dupn = model.dupn();
  const int step_width =
      static_cast<int>(categorical_steps_.size()) * dim_ + static_cast<int>(numeric_steps_.size());
  const int hidden = static_cast<int>(dupn.lstm_hidden());
  const int item_width = item_fields_.num_slots() * dim_;
  lstm_ = std::make_unique<nn::Lstm>(&params_, "behavior_lstm", step_width, hidden);
  attention_ =
      std::make_unique<nn::AttentionPooling>(&params_, "behavior_attention", hidden, item_width,
                                             static_cast<int>(dupn.attention_hidden()));
  user_mlp_ = std::make_unique<nn::Mlp>(
      &params_, "user_mlp", user_fields_.num_slots() * dim_ + hidden + numeric_fields_.num_fields(),
      dupn.user_mlp(), dupn.dropout());
  const int head_width = user_mlp_->output_dim() + item_width + numeric_fields_.num_fields();
  head_cross_ = std::make_unique<nn::CrossNetwork>(&params_, "head_cross", head_width,
                                                   static_cast<int>(dupn.cross_layers()));
  AddHeads(head_width);
}

absl::Status DupnModel::Prepare(const Batch& batch, ModelInput* model_input) const {
  DupnInput* input = static_cast<DupnInput*>(model_input);
  const int n = batch.size;
  input->StartBatch(n);
  absl::Status status = user_fields_.Prepare(batch, input, &input->user_fields);
  if (status.ok()) status = item_fields_.Prepare(batch, input, &input->item_fields);
  if (status.ok()) status = numeric_fields_.Prepare(batch, &input->numeric);
  if (!status.ok()) return status;

  absl::StatusOr<const SequenceColumn*> found =
      ColumnNamed(batch.sequences, behavior_column_, "SEQUENCE");
  if (!found.ok()) return found.status();
  const SequenceColumn& sequence = **found;
  const int steps = SequenceLengths(sequence, n, &input->lengths);
  input->num_steps = steps;
  input->step_row_ids.resize(categorical_steps_.size());
  for (size_t j = 0; j < categorical_steps_.size(); ++j) {
    absl::StatusOr<const SequenceField*> field = StepFieldNamed(sequence, categorical_steps_[j]);
    if (!field.ok()) return field.status();
    PadSteps(
        sequence, input->lengths, steps, (*field)->keys, nn::kPaddingRow,
        [input](uint64_t key) { return input->RowOf(key); }, &input->step_row_ids[j]);
  }
  input->step_values.resize(numeric_steps_.size());
  for (size_t j = 0; j < numeric_steps_.size(); ++j) {
    absl::StatusOr<const SequenceField*> field = StepFieldNamed(sequence, numeric_steps_[j]);
    if (!field.ok()) return field.status();
    PadSteps(
        sequence, input->lengths, steps, (*field)->values, 0.0f, [](float v) { return v; },
        &input->step_values[j]);
  }
  return PrepareTaskLabels(batch, tasks_, input);
}

void DupnModel::Forward(const ModelInput& model_input, nn::ConstMatrixRef rows) {
  const DupnInput& input = static_cast<const DupnInput&>(model_input);
  const int n = input.batch_size;
  const int steps = input.num_steps;
  const int hidden = lstm_->hidden_dim();
  const int num_categorical = static_cast<int>(categorical_steps_.size());

  step_inputs_.resize(static_cast<Eigen::Index>(steps) * n, lstm_->input_dim());
  for (int j = 0; j < num_categorical; ++j) {
    nn::GatherSequence(rows, input.step_row_ids[j], steps, step_inputs_.middleCols(j * dim_, dim_));
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
  item_.resize(n, static_cast<Eigen::Index>(item_fields_.num_slots()) * dim_);
  item_fields_.Pool(rows, input.item_fields, item_);
  const int profile_width = user_fields_.num_slots() * dim_;
  user_input_.resize(n, profile_width + hidden + input.numeric.cols());
  user_input_.rightCols(input.numeric.cols()) = input.numeric;
  user_fields_.Pool(rows, input.user_fields, user_input_.leftCols(profile_width));

  const Matrix& states = lstm_->Forward(step_inputs_, input.lengths);
  user_input_.middleCols(profile_width, hidden) = attention_->Forward(states, item_, input.lengths);
  ForwardUserMlpAndHeads(input);
}

bool DupnModel::UserSideShared(const DupnInput& input) {
  const size_t steps = static_cast<size_t>(input.num_steps);
  if (!RepeatsFirstBlock<int32_t>(input.lengths, 1)) return false;
  for (const std::vector<int32_t>& row_ids : input.step_row_ids) {
    if (!RepeatsFirstBlock<int32_t>(row_ids, steps)) return false;
  }
  for (const std::vector<float>& values : input.step_values) {
    if (!RepeatsFirstBlock<float>(values, steps)) return false;
  }
  return SameRowsForEverySample(input.user_fields);
}

void DupnModel::ForwardOneUser(const ModelInput& model_input, nn::ConstMatrixRef rows) {
  const DupnInput& input = static_cast<const DupnInput&>(model_input);
  if (!UserSideShared(input)) {
    Forward(input, rows);
    return;
  }
  const int n = input.batch_size;
  const int steps = input.num_steps;
  const int hidden = lstm_->hidden_dim();
  const int num_categorical = static_cast<int>(categorical_steps_.size());

  // Sample 0's steps as a batch of one: in the time-major layout, row t is step t.
  step_inputs_.resize(steps, lstm_->input_dim());
  for (int j = 0; j < num_categorical; ++j) {
    nn::GatherSequence(rows, absl::MakeConstSpan(input.step_row_ids[j]).first(steps), steps,
                       step_inputs_.middleCols(j * dim_, dim_));
  }
  for (size_t j = 0; j < numeric_steps_.size(); ++j) {
    const int col = num_categorical * dim_ + static_cast<int>(j);
    for (int t = 0; t < steps; ++t) step_inputs_(t, col) = input.step_values[j][t];
  }
  const Matrix& states = lstm_->Forward(step_inputs_, absl::MakeConstSpan(input.lengths).first(1));

  item_.resize(n, static_cast<Eigen::Index>(item_fields_.num_slots()) * dim_);
  item_fields_.Pool(rows, input.item_fields, item_);
  const int profile_width = user_fields_.num_slots() * dim_;
  user_input_.resize(n, profile_width + hidden + input.numeric.cols());
  user_input_.rightCols(input.numeric.cols()) = input.numeric;
  FirstSampleRows(input.user_fields, &first_user_fields_);
  user_fields_.Pool(rows, first_user_fields_, user_input_.topLeftCorner(1, profile_width));
  user_input_.block(1, 0, n - 1, profile_width) =
      user_input_.topLeftCorner(1, profile_width).replicate(n - 1, 1);
  user_input_.middleCols(profile_width, hidden) =
      attention_->ForwardOneSequence(states, input.lengths[0], item_);
  ForwardUserMlpAndHeads(input);
}

void DupnModel::ForwardUserMlpAndHeads(const DupnInput& input) {
  const int n = input.batch_size;
  const Matrix& user_vector = user_mlp_->Forward(user_input_);

  head_input_.resize(n, user_vector.cols() + item_.cols() + input.numeric.cols());
  head_input_.leftCols(user_vector.cols()) = user_vector;
  head_input_.middleCols(user_vector.cols(), item_.cols()) = item_;
  head_input_.rightCols(input.numeric.cols()) = input.numeric;
  const Matrix& crossed = head_cross_->Forward(head_input_);
  for (std::unique_ptr<TaskHead>& head : heads_) head->Forward(crossed);
}

void DupnModel::Backward(const ModelInput& model_input, std::vector<nn::LossValue>* losses,
                         Matrix* d_rows) {
  const DupnInput& input = static_cast<const DupnInput&>(model_input);
  HeadsBackward(input, losses, &d_crossed_);

  const Matrix& d_head_input = head_cross_->Backward(d_crossed_);
  const int user_width = user_mlp_->output_dim();
  d_user_vector_ = d_head_input.leftCols(user_width);
  const Matrix& d_user_input = user_mlp_->Backward(d_user_vector_);
  const int hidden = lstm_->hidden_dim();
  d_pooled_ = d_user_input.middleCols(user_fields_.num_slots() * dim_, hidden);
  attention_->Backward(d_pooled_);
  d_item_ = d_head_input.middleCols(user_width, item_.cols()) + attention_->d_query();
  const Matrix& d_steps = lstm_->Backward(&attention_->d_states(), nullptr);

  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);
  user_fields_.PoolBackward(d_user_input.leftCols(user_fields_.num_slots() * dim_),
                            input.user_fields, *d_rows);
  item_fields_.PoolBackward(d_item_, input.item_fields, *d_rows);
  for (size_t j = 0; j < categorical_steps_.size(); ++j) {
    nn::GatherSequenceBackward(d_steps.middleCols(j * dim_, dim_), input.step_row_ids[j],
                               input.num_steps, *d_rows);
  }
}

}  // namespace granary
