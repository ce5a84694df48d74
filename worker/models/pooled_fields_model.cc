#include "worker/models/pooled_fields_model.h"

#include <utility>

namespace granary {

absl::StatusOr<PooledFieldsModel::Inputs> PooledFieldsModel::CreateInputs(
    const google::protobuf::RepeatedPtrField<std::string>& fields,
    const google::protobuf::RepeatedPtrField<std::string>& numeric_fields,
    const proto::DatasetConfig& dataset) {
  absl::StatusOr<EmbeddedFields> embedded = EmbeddedFields::Create(fields, dataset);
  if (!embedded.ok()) return embedded.status();
  absl::StatusOr<NumericFields> numeric = NumericFields::Create(numeric_fields, dataset);
  if (!numeric.ok()) return numeric.status();
  return Inputs{*std::move(embedded), *std::move(numeric)};
}

PooledFieldsModel::PooledFieldsModel(const proto::ModelConfig& model, Inputs inputs)
    : MultiTaskModel(model),
      fields_(std::move(inputs.fields)),
      numeric_(std::move(inputs.numeric)) {}

int PooledFieldsModel::input_dim() const {
  return fields_.num_slots() * dim_ + numeric_.num_fields();
}

absl::Status PooledFieldsModel::Prepare(const Batch& batch, ModelInput* model_input) const {
  auto* input = static_cast<EmbeddedFieldsInput*>(model_input);
  input->StartBatch(batch.size);
  absl::Status status = fields_.Prepare(batch, input, &input->slots);
  if (status.ok()) status = numeric_.Prepare(batch, &input->numeric);
  if (!status.ok()) return status;
  return PrepareTaskLabels(batch, tasks_, input);
}

const nn::Matrix& PooledFieldsModel::InputOf(const ModelInput& model_input,
                                             nn::ConstMatrixRef rows) {
  const auto& input = static_cast<const EmbeddedFieldsInput&>(model_input);
  const Eigen::Index pooled_width = fields_.num_slots() * rows.cols();
  input_.resize(input.batch_size, pooled_width + input.numeric.cols());
  fields_.Pool(rows, input.slots, input_.leftCols(pooled_width));
  input_.rightCols(input.numeric.cols()) = input.numeric;
  return input_;
}

void PooledFieldsModel::InputBackward(const ModelInput& model_input, const nn::Matrix& d_input,
                                      nn::Matrix* d_rows) const {
  const auto& input = static_cast<const EmbeddedFieldsInput&>(model_input);
  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);
  fields_.PoolBackward(d_input.leftCols(static_cast<Eigen::Index>(fields_.num_slots()) * dim_),
                       input.slots, *d_rows);
}

}  // namespace granary
