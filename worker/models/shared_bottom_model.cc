#include "worker/models/shared_bottom_model.h"

namespace granary {

absl::StatusOr<std::unique_ptr<SharedBottomModel>> SharedBottomModel::Create(
    const proto::ModelConfig& model, const proto::DatasetConfig& dataset) {
  if (!model.has_shared_bottom()) {
    return absl::InvalidArgumentError("the model is not a shared-bottom model");
  }
  absl::StatusOr<EmbeddedFields> fields =
      EmbeddedFields::Create(model.shared_bottom().fields(), dataset);
  if (!fields.ok()) return fields.status();
  absl::StatusOr<NumericFields> numeric =
      NumericFields::Create(model.shared_bottom().numeric_fields(), dataset);
  if (!numeric.ok()) return numeric.status();
  return std::unique_ptr<SharedBottomModel>(
      new SharedBottomModel(model, *std::move(fields), *std::move(numeric)));
}

SharedBottomModel::SharedBottomModel(const proto::ModelConfig& model, EmbeddedFields fields,
                                     NumericFields numeric)
    : MultiTaskModel(model), fields_(std::move(fields)), numeric_(std::move(numeric)) {
  bottom_ = std::make_unique<nn::Mlp>(&params_, "bottom",
                                      fields_.num_slots() * dim_ + numeric_.num_fields(),
                                      model.shared_bottom().bottom_mlp());
  AddHeads(bottom_->output_dim());
}

absl::Status SharedBottomModel::Prepare(const Batch& batch, ModelInput* input) const {
  return PrepareEmbeddedFieldsInput(fields_, numeric_, tasks_, batch,
                                    static_cast<EmbeddedFieldsInput*>(input));
}

void SharedBottomModel::Forward(const ModelInput& model_input, nn::ConstMatrixRef rows) {
  const EmbeddedFieldsInput& input = static_cast<const EmbeddedFieldsInput&>(model_input);
  ConcatEmbeddedFieldsInput(fields_, rows, input, &input_);
  const nn::Matrix& bottom = bottom_->Forward(input_);
  for (std::unique_ptr<TaskHead>& head : heads_) head->Forward(bottom);
}

void SharedBottomModel::Backward(const ModelInput& model_input, std::vector<nn::LossValue>* losses,
                                 nn::Matrix* d_rows) {
  const EmbeddedFieldsInput& input = static_cast<const EmbeddedFieldsInput&>(model_input);
  HeadsBackward(input, losses, &d_bottom_);
  const nn::Matrix& d_input = bottom_->Backward(d_bottom_);
  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);
  fields_.PoolBackward(d_input.leftCols(static_cast<Eigen::Index>(fields_.num_slots()) * dim_),
                       input.slots, *d_rows);
}

}  // namespace granary
