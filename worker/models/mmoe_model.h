// MmoeModel: the multi-gate mixture-of-experts multi-task network (Ma et al., KDD 2018).
//
//   input         = concat of the fields' pooled embeddings (see EmbeddedFields) and the
//                   numeric_fields' values (NumericFields; may be none)
//   mixture k     = MixtureOfExperts(input), gate k             (experts shared by all tasks)
//   task k output = TaskHead k(mixture k)
//
// Not thread-safe: layers keep activations between Forward and Backward; one thread per model.
#ifndef GRANARY_WORKER_MODELS_MMOE_MODEL_H_
#define GRANARY_WORKER_MODELS_MMOE_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/pooled_fields_model.h"
#include "worker/nn/mixture_of_experts.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

class MmoeModel : public PooledFieldsModel {
 public:
  // Builds the network of `model` (REQUIRES: valid by ValidateModelConfig against `dataset`,
  // defaults filled by FillModelDefaults; CreateModel fills them). InvalidArgument if the
  // model is not an MMoE one or a field is missing or of a role ColumnFor rejects.
  static absl::StatusOr<std::unique_ptr<MmoeModel>> Create(const proto::ModelConfig& model,
                                                           const proto::DatasetConfig& dataset);

  // Model (NewInput and Prepare: PooledFieldsModel's).
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;

  // The mixture layer, e.g. to read each task's gate weights after Forward.
  const nn::MixtureOfExperts& mixture() const { return *mixture_; }

 private:
  MmoeModel(const proto::ModelConfig& model, Inputs inputs);

  std::unique_ptr<nn::MixtureOfExperts> mixture_;
  std::vector<const nn::Matrix*> d_mixtures_;  // into the heads, per task
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_MMOE_MODEL_H_
