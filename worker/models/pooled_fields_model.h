// PooledFieldsModel: a MultiTaskModel whose input is one list of embedded fields
// (EmbeddedFields, each pooled into one slot) and one of numeric columns (NumericFields), side
// by side: shared bottom and MMoE. It prepares their EmbeddedFieldsInput and builds the
// network's input [B, input_dim()] = [pooled slots | numeric values]; the derived class runs
// its network on it and hands the input's gradient back to InputBackward.
//
// Not thread-safe (as Model).
#ifndef GRANARY_WORKER_MODELS_POOLED_FIELDS_MODEL_H_
#define GRANARY_WORKER_MODELS_POOLED_FIELDS_MODEL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "worker/batch.h"
#include "worker/models/embedded_fields.h"
#include "worker/models/model.h"
#include "worker/models/multi_task_model.h"
#include "worker/models/numeric_fields.h"
#include "worker/nn/tensor.h"

namespace granary {

class PooledFieldsModel : public MultiTaskModel {
 public:
  // The input parts of such a model, for the derived class's Create.
  struct Inputs {
    EmbeddedFields fields;
    NumericFields numeric;
  };
  // Errors as EmbeddedFields::Create and NumericFields::Create.
  static absl::StatusOr<Inputs> CreateInputs(
      const google::protobuf::RepeatedPtrField<std::string>& fields,
      const google::protobuf::RepeatedPtrField<std::string>& numeric_fields,
      const proto::DatasetConfig& dataset);

  // Model; Prepare and Forward take an EmbeddedFieldsInput (from NewInput).
  std::unique_ptr<ModelInput> NewInput() const override {
    return std::make_unique<EmbeddedFieldsInput>();
  }
  absl::Status Prepare(const Batch& batch, ModelInput* input) const override;

 protected:
  PooledFieldsModel(const proto::ModelConfig& model, Inputs inputs);

  // The width of the network's input: slots * embedding_dim() + numeric fields.
  int input_dim() const;
  // The network's input [B, input_dim()] for a prepared `input` and its pulled `rows`, valid
  // until the next call.
  const nn::Matrix& InputOf(const ModelInput& input, nn::ConstMatrixRef rows);
  // Given the gradient of the last InputOf's output, writes the rows' gradient into *d_rows
  // (resized and zeroed first). The numeric values have none.
  void InputBackward(const ModelInput& input, const nn::Matrix& d_input, nn::Matrix* d_rows) const;

 private:
  const EmbeddedFields fields_;
  const NumericFields numeric_;
  nn::Matrix input_;  // [B, input_dim()]
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_POOLED_FIELDS_MODEL_H_
