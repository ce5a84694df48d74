#include "worker/models/mmoe_model.h"

#include <utility>

namespace granary {

absl::StatusOr<std::unique_ptr<MmoeModel>> MmoeModel::Create(const proto::ModelConfig& model,
                                                             const proto::DatasetConfig& dataset) {
  if (!model.has_mmoe()) return absl::InvalidArgumentError("the model is not an MMoE model");
  absl::StatusOr<Inputs> inputs =
      CreateInputs(model.mmoe().fields(), model.mmoe().numeric_fields(), dataset);
  if (!inputs.ok()) return inputs.status();
  return std::unique_ptr<MmoeModel>(new MmoeModel(model, *std::move(inputs)));
}

MmoeModel::MmoeModel(const proto::ModelConfig& model, Inputs inputs)
    : PooledFieldsModel(model, std::move(inputs)) {
  const proto::MmoeConfig& mmoe = model.mmoe();
  mixture_ = std::make_unique<nn::MixtureOfExperts>(
      &params_, "mmoe", input_dim(), static_cast<int>(mmoe.num_experts()), mmoe.expert_mlp(),
      static_cast<int>(tasks_.size()), mmoe.dropout());
  AddHeads(mixture_->output_dim());
  d_mixtures_.resize(tasks_.size());
}

void MmoeModel::Forward(const ModelInput& input, nn::ConstMatrixRef rows) {
  mixture_->Forward(InputOf(input, rows));
  for (size_t k = 0; k < heads_.size(); ++k) {
    heads_[k]->Forward(mixture_->output(static_cast<int>(k)));
  }
}

void MmoeModel::Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                         nn::Matrix* d_rows) {
  StartBackward(losses);
  for (size_t k = 0; k < heads_.size(); ++k) {
    d_mixtures_[k] = &heads_[k]->Backward(input, static_cast<int>(k), &(*losses)[k]);
  }
  InputBackward(input, mixture_->Backward(d_mixtures_), d_rows);
}

}  // namespace granary
