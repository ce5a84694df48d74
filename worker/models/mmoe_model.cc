#include "worker/models/mmoe_model.h"

namespace granary {

absl::StatusOr<std::unique_ptr<MmoeModel>> MmoeModel::Create(const proto::ModelConfig& model,
                                                             const proto::DatasetConfig& dataset) {
  if (!model.has_mmoe()) return absl::InvalidArgumentError("the model is not an MMoE model");
  absl::StatusOr<EmbeddedFields> fields = EmbeddedFields::Create(model.mmoe().fields(), dataset);
  if (!fields.ok()) return fields.status();
  absl::StatusOr<NumericFields> numeric =
      NumericFields::Create(model.mmoe().numeric_fields(), dataset);
  if (!numeric.ok()) return numeric.status();
  return std::unique_ptr<MmoeModel>(new MmoeModel(model, *std::move(fields), *std::move(numeric)));
}

MmoeModel::MmoeModel(const proto::ModelConfig& model, EmbeddedFields fields, NumericFields numeric)
    : MultiTaskModel(model), fields_(std::move(fields)), numeric_(std::move(numeric)) {
  const proto::MmoeConfig& mmoe = model.mmoe();
  mixture_ = std::make_unique<nn::MixtureOfExperts>(
      &params_, "mmoe", fields_.num_slots() * dim_ + numeric_.num_fields(),
      static_cast<int>(mmoe.num_experts()), mmoe.expert_mlp(), static_cast<int>(tasks_.size()));
  AddHeads(mixture_->output_dim());
  d_mixtures_.resize(tasks_.size());
}

absl::Status MmoeModel::Prepare(const Batch& batch, ModelInput* input) const {
  return PrepareEmbeddedFieldsInput(fields_, numeric_, tasks_, batch,
                                    static_cast<EmbeddedFieldsInput*>(input));
}

void MmoeModel::Forward(const ModelInput& model_input, nn::ConstMatrixRef rows) {
  const EmbeddedFieldsInput& input = static_cast<const EmbeddedFieldsInput&>(model_input);
  ConcatEmbeddedFieldsInput(fields_, rows, input, &input_);
  mixture_->Forward(input_);
  for (size_t k = 0; k < heads_.size(); ++k) {
    heads_[k]->Forward(mixture_->output(static_cast<int>(k)));
  }
}

void MmoeModel::Backward(const ModelInput& model_input, std::vector<nn::LossValue>* losses,
                         nn::Matrix* d_rows) {
  const EmbeddedFieldsInput& input = static_cast<const EmbeddedFieldsInput&>(model_input);
  StartBackward(losses);
  for (size_t k = 0; k < heads_.size(); ++k) {
    d_mixtures_[k] = &heads_[k]->Backward(input, static_cast<int>(k), &(*losses)[k]);
  }
  const nn::Matrix& d_input = mixture_->Backward(d_mixtures_);
  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);
  fields_.PoolBackward(d_input.leftCols(static_cast<Eigen::Index>(fields_.num_slots()) * dim_),
                       input.slots, *d_rows);
}

}  // namespace granary
