// DupnModel: the Deep User Perception Network (Ni et al., KDD 2018) of a job config, built on
// the layers of worker/model, with forward and backward passes over one batch.
//
//   user profile   = concat of the user fields' embeddings (lists mean-pooled)
//   target item    = concat of the item fields' embeddings                 (attention query)
//   step input     = concat of each behaviour step's field embeddings and numeric fields
//   pooled         = AttentionPooling(Lstm(step inputs), query = target item)
//   user vector    = ReLU MLP(concat(user profile, pooled))            (shared by all tasks)
//   task k output  = Dense(ReLU hidden layers(concat(user vector, target item)))
//
// Embeddings are not parameters of the model: every sparse field reads one [num_keys, dim]
// matrix of rows pulled for the batch's unique keys (DupnInput::keys). A behaviour step's item
// and the target item share rows when the dataset config gives them one hash_space. Dense
// parameters live in params(), flattened in a fixed order for the parameter server.
//
// Usage per batch: Prepare (before the pull: it says which keys to pull), Forward, then
// Backward for training or output() for evaluation.
//
// Not thread-safe: layers keep activations between Forward and Backward; one thread per model.
#ifndef GRANARY_WORKER_DUPN_MODEL_H_
#define GRANARY_WORKER_DUPN_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/model/activation.h"
#include "worker/model/attention_pooling.h"
#include "worker/model/dense.h"
#include "worker/model/loss.h"
#include "worker/model/lstm.h"
#include "worker/model/parameter_set.h"
#include "worker/model/tensor.h"
#include "worker/reader.h"

namespace granary {

// The model's view of one batch: the unique keys to pull and where each field finds its rows
// among them, the behaviour sequence and the labels. Built by DupnModel::Prepare; reusing one
// DupnInput across batches reuses its memory.
struct DupnInput {
  // CSR over samples: sample b's values are row_ids[offsets[b], offsets[b + 1]).
  struct FieldRows {
    std::vector<int32_t> offsets;  // [B + 1]
    std::vector<int32_t> row_ids;  // rows of `keys`
  };

  int batch_size = 0;
  // Unique keys of every sparse field of the batch, in first-seen order; row i of the pulled
  // matrix is the embedding of keys[i].
  std::vector<uint64_t> keys;
  std::vector<FieldRows> user_fields;  // in DupnConfig.user_fields order
  std::vector<FieldRows> item_fields;  // in DupnConfig.item_fields order
  // The behaviour sequence, padded to num_steps = max(1, longest length).
  int num_steps = 1;
  std::vector<int32_t> lengths;                    // [B]
  std::vector<std::vector<int32_t>> step_row_ids;  // per CATEGORICAL step field: [B * T]
                                                   // sample-major, kPaddingRow past the length
  std::vector<std::vector<float>> step_values;     // per NUMERIC step field: [B * T]
  // Per task, [B] each: the float label, whether it is present, and (MULTICLASS) the class.
  std::vector<std::vector<float>> labels;
  std::vector<std::vector<uint8_t>> has_label;
  std::vector<std::vector<int32_t>> classes;

  // Scratch of Prepare: row of each key seen so far.
  absl::flat_hash_map<uint64_t, int32_t> row_of_key;
};

class DupnModel {
 public:
  // Builds the network of `model` (REQUIRES: validated with ValidateJobConfig against
  // `dataset`, so every named column exists with the right role). The dense parameters are
  // zero until params().Initialize(seed).
  static absl::StatusOr<std::unique_ptr<DupnModel>> Create(const proto::ModelConfig& model,
                                                           const proto::DatasetConfig& dataset);
  DupnModel(const DupnModel&) = delete;
  DupnModel& operator=(const DupnModel&) = delete;

  // Fills *input from `batch`. InvalidArgument if the batch lacks a configured column (it
  // was read with another dataset config) or a MULTICLASS label is not a class id in
  // [0, num_classes), naming the task and the value.
  absl::Status Prepare(const Batch& batch, DupnInput* input) const;

  // Runs the network. REQUIRES: `rows` is [input.keys.size(), embedding_dim()] and stays
  // alive and unchanged until Backward returns; `input` likewise.
  void Forward(const DupnInput& input, model::ConstMatrixRef rows);

  // Task k's output of the last Forward: BINARY [B, 1] logits, MULTICLASS [B, K] logits,
  // REGRESSION [B, 1] predictions. REQUIRES: Forward ran.
  const model::Matrix& output(int task) const { return *heads_[task].output; }

  // Computes every task's loss over its labelled samples (*losses[k], without the task's
  // loss weight) and the gradients of sum_k loss_weight_k * mean loss_k: the dense ones into
  // params()' grads (zeroed first) and the embedding rows' into *d_rows
  // [input.keys.size(), embedding_dim()] (resized and zeroed first).
  void Backward(const DupnInput& input, std::vector<model::LossValue>* losses,
                model::Matrix* d_rows);

  model::ParameterSet& params() { return params_; }
  int embedding_dim() const { return dim_; }
  const std::vector<proto::TaskConfig>& tasks() const { return tasks_; }

 private:
  struct EmbeddedField {
    std::string column;
    bool multi = false;  // MULTI_CATEGORICAL, else CATEGORICAL
  };
  struct Mlp {
    std::vector<std::unique_ptr<model::Dense>> layers;
    std::vector<std::unique_ptr<model::Activation>> activations;  // ReLU after each hidden
  };
  struct Head {
    Mlp hidden;
    std::unique_ptr<model::Dense> out;
    const model::Matrix* output = nullptr;
    model::Matrix d_output;
  };

  DupnModel(const proto::ModelConfig& model, std::vector<EmbeddedField> user_fields,
            std::vector<EmbeddedField> item_fields, const proto::ColumnConfig& behavior);
  // Adds ReLU Dense layers of `widths` on top of `input_dim` to *mlp; returns the output width.
  int BuildMlp(const std::string& name, int input_dim,
               const google::protobuf::RepeatedField<uint32_t>& widths, Mlp* mlp);
  static const model::Matrix& MlpForward(Mlp& mlp, const model::Matrix& input);
  static const model::Matrix& MlpBackward(Mlp& mlp, const model::Matrix& d_output);
  static absl::Status PrepareField(const Batch& batch, const EmbeddedField& field, DupnInput* input,
                                   DupnInput::FieldRows* rows);

  const int dim_;
  const std::vector<EmbeddedField> user_fields_;
  const std::vector<EmbeddedField> item_fields_;
  const std::string behavior_column_;
  std::vector<std::string> categorical_steps_;  // step field names, in step order
  std::vector<std::string> numeric_steps_;
  std::vector<proto::TaskConfig> tasks_;

  model::ParameterSet params_;  // before the layers, which point into it
  std::unique_ptr<model::Lstm> lstm_;
  std::unique_ptr<model::AttentionPooling> attention_;
  Mlp user_mlp_;
  std::vector<Head> heads_;

  // Forward activations and backward scratch, reused across batches.
  model::Matrix step_inputs_;  // [T * B, step width]
  model::Matrix user_input_;   // [B, user fields * dim + lstm hidden]
  model::Matrix item_;         // [B, item fields * dim]
  model::Matrix head_input_;   // [B, user vector + item fields * dim]
  model::Matrix d_head_input_;
  model::Matrix d_user_vector_;
  model::Matrix d_pooled_;
  model::Matrix d_item_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_DUPN_MODEL_H_
