// SharedBottomModel: the shared-bottom multi-task network (Caruana 1997), the usual baseline
// of multi-task recommendation.
//
//   input         = concat of the fields' pooled embeddings (see EmbeddedFields) and the
//                   numeric_fields' values (NumericFields; may be none)
//   bottom        = ReLU MLP(input)                              (shared by all tasks)
//   task k output = TaskHead k(bottom)
//
// Not thread-safe: layers keep activations between Forward and Backward; one thread per model.
#ifndef GRANARY_WORKER_MODELS_SHARED_BOTTOM_MODEL_H_
#define GRANARY_WORKER_MODELS_SHARED_BOTTOM_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/pooled_fields_model.h"
#include "worker/nn/mlp.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

class SharedBottomModel : public PooledFieldsModel {
 public:
  // Builds the network of `model` (REQUIRES: valid by ValidateModelConfig against `dataset`,
  // defaults filled by FillModelDefaults; CreateModel fills them). InvalidArgument if the
  // model is not a shared-bottom one or a field is missing or of a role ColumnFor rejects.
  static absl::StatusOr<std::unique_ptr<SharedBottomModel>> Create(
      const proto::ModelConfig& model, const proto::DatasetConfig& dataset);

  // Model (NewInput and Prepare: PooledFieldsModel's).
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;

 private:
  SharedBottomModel(const proto::ModelConfig& model, Inputs inputs);

  std::unique_ptr<nn::Mlp> bottom_;
  nn::Matrix d_bottom_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_SHARED_BOTTOM_MODEL_H_
