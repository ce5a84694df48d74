#include "worker/models/autoint_model.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace granary {

absl::StatusOr<std::unique_ptr<AutoIntModel>> AutoIntModel::Create(
    const proto::ModelConfig& model, const proto::DatasetConfig& dataset) {
  if (!model.has_autoint()) return absl::InvalidArgumentError("the model is not an AutoInt model");
  absl::StatusOr<Inputs> inputs =
      CreateInputs(model.autoint().fields(), model.autoint().numeric_fields(), dataset);
  if (!inputs.ok()) return inputs.status();
  return std::unique_ptr<AutoIntModel>(new AutoIntModel(model, *std::move(inputs)));
}

AutoIntModel::AutoIntModel(const proto::ModelConfig& model, Inputs inputs)
    : PooledFieldsModel(model, inputs),
      num_fields_(inputs.fields.num_slots()),
      num_numeric_(inputs.numeric.num_fields()) {
  const proto::AutoIntConfig& config = model.autoint();
  const int heads = static_cast<int>(config.attention_heads());
  const int head_dim = static_cast<int>(config.attention_head_dim());
  int width = dim_;
  for (uint32_t l = 0; l < config.attention_layers(); ++l) {
    layers_.push_back(std::make_unique<nn::FieldSelfAttention>(
        &params_, absl::StrCat("autoint.", l), num_fields_, width, heads, head_dim));
    width = layers_.back()->output_dim();
  }
  AddHeads(num_fields_ * width + num_numeric_);
}

void AutoIntModel::Forward(const ModelInput& input, nn::ConstMatrixRef rows) {
  const nn::Matrix& network_input = InputOf(input, rows);
  fields_ = network_input.leftCols(static_cast<Eigen::Index>(num_fields_) * dim_);
  const nn::Matrix* interacted = &fields_;
  for (std::unique_ptr<nn::FieldSelfAttention>& layer : layers_) {
    interacted = &layer->Forward(*interacted);
  }
  heads_input_.resize(input.batch_size, interacted->cols() + num_numeric_);
  heads_input_.leftCols(interacted->cols()) = *interacted;
  heads_input_.rightCols(num_numeric_) = network_input.rightCols(num_numeric_);
  for (std::unique_ptr<TaskHead>& head : heads_) head->Forward(heads_input_);
}

void AutoIntModel::Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                            nn::Matrix* d_rows) {
  HeadsBackward(input, losses, &d_heads_input_);
  d_interacted_ = d_heads_input_.leftCols(d_heads_input_.cols() - num_numeric_);
  const nn::Matrix* d_fields = &d_interacted_;
  for (auto layer = layers_.rbegin(); layer != layers_.rend(); ++layer) {
    d_fields = &(*layer)->Backward(*d_fields);
  }
  d_input_.resize(input.batch_size, input_dim());
  d_input_.leftCols(d_fields->cols()) = *d_fields;
  d_input_.rightCols(num_numeric_).setZero();
  InputBackward(input, d_input_, d_rows);
}

}  // namespace granary
