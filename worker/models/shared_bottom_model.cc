#include "worker/models/shared_bottom_model.h"

#include <utility>

namespace granary {

absl::StatusOr<std::unique_ptr<SharedBottomModel>> SharedBottomModel::Create(
    const proto::ModelConfig& model, const proto::DatasetConfig& dataset) {
  if (!model.has_shared_bottom()) {
    return absl::InvalidArgumentError("the model is not a shared-bottom model");
  }
  absl::StatusOr<Inputs> inputs =
      CreateInputs(model.shared_bottom().fields(), model.shared_bottom().numeric_fields(), dataset);
  if (!inputs.ok()) return inputs.status();
  return std::unique_ptr<SharedBottomModel>(new SharedBottomModel(model, *std::move(inputs)));
}

SharedBottomModel::SharedBottomModel(const proto::ModelConfig& model, Inputs inputs)
    : PooledFieldsModel(model, std::move(inputs)) {
  bottom_ =
      std::make_unique<nn::Mlp>(&params_, "bottom", input_dim(), model.shared_bottom().bottom_mlp(),
                                model.shared_bottom().dropout());
  AddHeads(bottom_->output_dim());
}

void SharedBottomModel::Forward(const ModelInput& input, nn::ConstMatrixRef rows) {
  const nn::Matrix& bottom = bottom_->Forward(InputOf(input, rows));
  for (std::unique_ptr<TaskHead>& head : heads_) head->Forward(bottom);
}

void SharedBottomModel::Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                                 nn::Matrix* d_rows) {
  HeadsBackward(input, losses, &d_bottom_);
  InputBackward(input, bottom_->Backward(d_bottom_), d_rows);
}

}  // namespace granary
