// RalmUserModel: the ralm_user architecture (common/proto/job.proto RalmUserConfig), stage 1 of
// RALM (Liu et al., KDD 2019): a user vector learned from many user fields, for the look-alike
// stage (worker/models/ralm_lookalike.h) to represent an item by its clickers.
//
//   field vectors  h_1..h_F: each user field's embedding (a list or a sequence's step field
//                  mean-pooled; EmbeddedFields), and, when there are numeric fields, their
//                  min-max normalized values through one linear layer to embedding_dim
//   attention merge  a = softmax_f(v . tanh(h_f W + q U + c)), q = mean_f h_f (the user's
//                  context: the weights differ per user); merged = sum_f a_f h_f
//                  (nn::AttentionPooling over the F field vectors, with q as its query)
//   user vector    L2Normalize(Dense_out(ReLU MLP(merged)))
//   item vector    an item Tower (worker/models/tower.h)
//
// Trained on the next click: the in-batch softmax over the batch's positives of two_tower
// (CorrectedInBatchSoftmax), so the user vector ranks the clicked item above the other
// positives' items. output(0) is <user, item> / temperature as for every RetrievalModel, and the
// trainer's retrieval evaluation exports the vectors (user_vectors.vec, item_vectors.vec).
//
// Parameters: "ralm_user.numeric" (when numeric fields are set), "ralm_user.merge",
// "ralm_user.mlp.<i>", "ralm_user.mlp.out", "item_tower.*".
//
// Not thread-safe (as Model).
#ifndef GRANARY_WORKER_MODELS_RALM_USER_MODEL_H_
#define GRANARY_WORKER_MODELS_RALM_USER_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/corrected_in_batch_softmax.h"
#include "worker/models/numeric_fields.h"
#include "worker/models/retrieval_model.h"
#include "worker/models/tower.h"
#include "worker/nn/attention_pooling.h"
#include "worker/nn/dense.h"
#include "worker/nn/l2_normalize.h"
#include "worker/nn/mlp.h"

namespace granary {

struct RalmUserInput : RetrievalInput {
  nn::Matrix numeric;  // [B, numeric fields], min-max normalized by the reader
};

class RalmUserModel : public RetrievalModel {
 public:
  // REQUIRES: model.has_ralm_user(); defaults filled by FillModelDefaults (CreateModel fills
  // them). InvalidArgument as ValidateRetrievalModel (model_config.h).
  static absl::StatusOr<std::unique_ptr<RalmUserModel>> Create(const proto::ModelConfig& model,
                                                               const proto::DatasetConfig& dataset);

  std::unique_ptr<ModelInput> NewInput() const override;
  absl::Status Prepare(const Batch& batch, ModelInput* input) const override;
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;
  const nn::Matrix& user_vectors() const override { return *user_vectors_; }
  const nn::Matrix& item_vectors() const override { return *item_vectors_; }

  // [F, B]: the attention merge's weight of field vector f for sample b in the last Forward;
  // the numeric fields' vector, if any, is the last.
  const nn::Matrix& field_weights() const { return merge_.weights(); }
  int num_field_vectors() const { return num_field_vectors_; }

 private:
  RalmUserModel(const proto::ModelConfig& model, EmbeddedFields user_fields,
                NumericFields numeric_fields, EmbeddedFields item_fields);

  const proto::RalmUserConfig ralm_;
  const EmbeddedFields user_fields_;
  const NumericFields numeric_fields_;
  const int num_field_vectors_;
  std::optional<nn::Dense> numeric_projection_;  // set when there are numeric fields
  nn::AttentionPooling merge_;
  nn::Mlp user_hidden_;
  nn::Dense user_out_;
  nn::L2Normalize user_normalize_;
  Tower item_tower_;
  CorrectedInBatchSoftmax softmax_;

  const nn::Matrix* user_vectors_ = nullptr;
  const nn::Matrix* item_vectors_ = nullptr;
  // Forward activations: the pooled fields [B, slots * dim], the field vectors time-major
  // [F * B, dim] (vector f of sample b in row f * B + b), their mean, the query [B, dim].
  nn::Matrix pooled_;
  nn::Matrix field_vectors_;
  nn::Matrix query_;
  std::vector<int32_t> lengths_;

  // Backward scratch.
  nn::Matrix d_user_vectors_, d_item_vectors_;
  nn::Matrix d_field_vectors_;
  nn::Matrix d_query_share_;      // [B, dim]: 1/F of the query's gradient
  nn::Matrix d_numeric_vectors_;  // [B, dim]: the numeric fields' vector's gradient
  nn::Matrix d_pooled_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_RALM_USER_MODEL_H_
