// AutoIntModel: AutoInt (Song et al., CIKM 2019) for the multi-task jobs: the fields' embeddings
// learn their interactions by self-attention, and each task's head reads the result.
//
//   fields        = the fields' pooled embeddings (see EmbeddedFields), F of embedding_dim each
//   interacted    = attention_layers FieldSelfAttention layers over them (worker/nn/
//                   field_self_attention.h), F of attention_heads * attention_head_dim each
//   task k output = TaskHead k(concat of the flattened interacted fields and the
//                   numeric_fields' values)
//
// With no hidden_sizes in a task the head is the paper's output layer, a logistic regression
// over the flattened interacted fields (eq. 9). Numeric columns enter the heads as they are,
// as in the other multi-task models, rather than as the paper's value-scaled field embeddings:
// unnormalized statistics (counts) would otherwise set the attention's scale.
//
// Not thread-safe: layers keep activations between Forward and Backward; one thread per model.
#ifndef GRANARY_WORKER_MODELS_AUTOINT_MODEL_H_
#define GRANARY_WORKER_MODELS_AUTOINT_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/pooled_fields_model.h"
#include "worker/nn/field_self_attention.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

class AutoIntModel : public PooledFieldsModel {
 public:
  // Builds the network of `model` (REQUIRES: valid by ValidateModelConfig against `dataset`,
  // defaults filled by FillModelDefaults; CreateModel fills them). InvalidArgument if the
  // model is not an AutoInt one or a field is missing or of a role ColumnFor rejects.
  static absl::StatusOr<std::unique_ptr<AutoIntModel>> Create(const proto::ModelConfig& model,
                                                              const proto::DatasetConfig& dataset);

  // Model (NewInput and Prepare: PooledFieldsModel's).
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;

  // The interacting layers, first to last.
  const std::vector<std::unique_ptr<nn::FieldSelfAttention>>& layers() const { return layers_; }

 private:
  AutoIntModel(const proto::ModelConfig& model, Inputs inputs);

  const int num_fields_;
  const int num_numeric_;
  std::vector<std::unique_ptr<nn::FieldSelfAttention>> layers_;

  nn::Matrix fields_;       // [B, F * embedding_dim]: the first layer's input
  nn::Matrix heads_input_;  // [B, F * last layer's width + numeric fields]
  nn::Matrix d_heads_input_;
  nn::Matrix d_interacted_;  // [B, F * last layer's width]
  nn::Matrix d_input_;       // [B, input_dim()]
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_AUTOINT_MODEL_H_
