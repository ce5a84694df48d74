// DupnModel: the Deep User Perception Network (Ni et al., KDD 2018) of a job config, built on
// the layers of worker/nn, with forward and backward passes over one batch.
//
//   user profile   = concat of the user fields' embeddings (lists mean-pooled)
//   target item    = concat of the item fields' embeddings                 (attention query)
//   step input     = concat of each behaviour step's field embeddings and numeric fields
//   pooled         = AttentionPooling(Lstm(step inputs), query = target item)
//   numeric        = the numeric_fields' values as they are (missing = 0; may be none)
//   user vector    = ReLU MLP(concat(user profile, pooled, numeric))   (shared by all tasks)
//   head input     = CrossNetwork(concat(user vector, target item, numeric))  (0+ layers)
//   task k output  = Dense(ReLU hidden layers(head input))
//
// The numeric fields (statistics of earlier ratings of the user and the item) enter twice: the
// user MLP mixes them with the profile and the behaviours, and the heads see them as they are.
// On the MovieLens validation split each place alone was worth less than both (0.760-0.761
// against 0.762 click AUC).
//
// Embeddings are not parameters of the model: every sparse field reads one [num_keys, dim]
// matrix of rows pulled for the batch's unique keys (DupnInput::keys). A behaviour step's item
// and the target item share rows when the dataset config gives them one hash_space. Dense
// parameters live in params(), flattened in a fixed order for the parameter server.
//
// Usage per batch: Prepare (before the pull: it says which keys to pull), Forward, then
// Backward for training or output() for evaluation.
//
// Serving (ForwardOneUser, one user and N candidate items): the user-side columns are the
// user_fields and the behaviour sequence (its lengths and every step field); the item_fields
// and the numeric_fields are per candidate (the numeric fields are statistics of the user AND
// the item, e.g. MovieLens' movie_mean and item_cf_mean). When the user-side columns repeat
// sample 0's, the user profile, the steps' inputs and the LSTM run once; the attention with
// each candidate as query, the user MLP, the cross network and the heads run over the N
// candidates as one batch. A step field that depends on the candidate (MovieLens' history
// "similarity" to the target) makes the LSTM per candidate: ForwardOneUser checks the
// user-side arrays and runs Forward when they differ, so its outputs always equal Forward's.
// Backward does not follow ForwardOneUser.
//
// Not thread-safe: layers keep activations between Forward and Backward; one thread per model.
#ifndef GRANARY_WORKER_MODELS_DUPN_MODEL_H_
#define GRANARY_WORKER_MODELS_DUPN_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/batch.h"
#include "worker/models/embedded_fields.h"
#include "worker/models/model.h"
#include "worker/models/multi_task_model.h"
#include "worker/models/numeric_fields.h"
#include "worker/nn/attention_pooling.h"
#include "worker/nn/cross_network.h"
#include "worker/nn/loss.h"
#include "worker/nn/lstm.h"
#include "worker/nn/mlp.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

// DUPN's view of one batch: beside the keys and labels, where each field finds its rows among
// the keys and the behaviour sequence. Built by DupnModel::Prepare.
struct DupnInput : ModelInput {
  std::vector<SlotRows> user_fields;  // in DupnConfig.user_fields order
  std::vector<SlotRows> item_fields;  // in DupnConfig.item_fields order
  // The behaviour sequence, padded to num_steps = max(1, longest length).
  int num_steps = 1;
  std::vector<int32_t> lengths;                    // [B]
  std::vector<std::vector<int32_t>> step_row_ids;  // per CATEGORICAL step field: [B * T]
                                                   // sample-major, kPaddingRow past the length
  std::vector<std::vector<float>> step_values;     // per NUMERIC step field: [B * T]
  nn::Matrix numeric;                              // [B, numeric fields]
};

class DupnModel : public MultiTaskModel {
 public:
  // Builds the network of `model` (REQUIRES: valid by ValidateModelConfig against `dataset`,
  // defaults filled by FillModelDefaults; CreateModel fills them). InvalidArgument if the
  // model is not a DUPN one or a column is missing or of a role ColumnFor rejects. The dense
  // parameters are zero until params().Initialize(seed).
  static absl::StatusOr<std::unique_ptr<DupnModel>> Create(const proto::ModelConfig& model,
                                                           const proto::DatasetConfig& dataset);
  DupnModel(const DupnModel&) = delete;
  DupnModel& operator=(const DupnModel&) = delete;

  // Model; Prepare and Forward take a DupnInput (from NewInput).
  std::unique_ptr<ModelInput> NewInput() const override { return std::make_unique<DupnInput>(); }
  absl::Status Prepare(const Batch& batch, ModelInput* input) const override;
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void ForwardOneUser(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;

 private:
  DupnModel(const proto::ModelConfig& model, EmbeddedFields user_fields, EmbeddedFields item_fields,
            NumericFields numeric_fields, const proto::ColumnConfig& behavior);
  // Whether every sample's user fields and behaviour sequence equal sample 0's.
  static bool UserSideShared(const DupnInput& input);
  // Forward's part after the attention: REQUIRES user_input_ and item_ filled for `input`;
  // runs the user MLP, the cross network and the heads over the batch.
  void ForwardUserMlpAndHeads(const DupnInput& input);

  const EmbeddedFields user_fields_;
  const EmbeddedFields item_fields_;
  const NumericFields numeric_fields_;
  const std::string behavior_column_;
  std::vector<std::string> categorical_steps_;  // step field names, in step order
  std::vector<std::string> numeric_steps_;

  std::unique_ptr<nn::Lstm> lstm_;
  std::unique_ptr<nn::AttentionPooling> attention_;
  std::unique_ptr<nn::Mlp> user_mlp_;
  std::unique_ptr<nn::CrossNetwork> head_cross_;

  // Forward activations and backward scratch, reused across batches.
  nn::Matrix step_inputs_;  // [T * B, step width]
  nn::Matrix user_input_;   // [B, user fields * dim + lstm hidden + numeric fields]
  nn::Matrix item_;         // [B, item fields * dim]
  nn::Matrix head_input_;   // [B, user vector + item fields * dim + numeric fields]
  std::vector<SlotRows> first_user_fields_;  // ForwardOneUser: sample 0's user_fields
  nn::Matrix d_crossed_;
  nn::Matrix d_user_vector_;
  nn::Matrix d_pooled_;
  nn::Matrix d_item_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_DUPN_MODEL_H_
