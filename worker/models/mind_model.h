// MindModel: MIND, the Multi-Interest Network with Dynamic routing (Li et al., CIKM 2019), a
// retrieval model (worker/models/retrieval_model.h) that gives a user several vectors, one per
// interest, and an item one vector:
//
//   behaviours   = each step of the behaviour sequence, its CATEGORICAL step fields embedded and
//                  concatenated                                           [T * B, fields * dim]
//   routed       = InterestRouting (worker/nn/interest_routing.h): K capsules of dim, of which
//                  sample b has K_b (>= 1 here: a sample with no history keeps one interest,
//                  made of its profile alone)                             [B, K * dim]
//   profile      = the user tower's fields, pooled                        [B, slots * dim]
//   interest_k   = L2Normalize(Dense_out(ReLU MLP([routed_k | profile]))), one MLP shared by the
//                  interests (the user tower's widths), as the paper concatenates the profile
//   item         = the item tower (worker/models/tower.h), normalized
//   trained user = LabelAwareAttention of the item over the interests (power p)
// Training: the in-batch softmax of two_tower over the batch's positives, users = the trained
// user vectors, with the logQ correction when sampling_bias_correction is set. Serving (and
// output(0), and the retrieval evaluation through interest_vectors()) scores an item by the
// user's best interest: max over k < K_b of <interest_k, item> / temperature, as the paper
// serves.
//
// Parameters: "mind.routing/bilinear", "mind.interest_mlp.<i>", "mind.interest_mlp.out",
// "item_tower.<i>", "item_tower.out".
//
// Not thread-safe (as Model).
#ifndef GRANARY_WORKER_MODELS_MIND_MODEL_H_
#define GRANARY_WORKER_MODELS_MIND_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/corrected_in_batch_softmax.h"
#include "worker/models/retrieval_model.h"
#include "worker/models/tower.h"
#include "worker/nn/dense.h"
#include "worker/nn/interest_routing.h"
#include "worker/nn/l2_normalize.h"
#include "worker/nn/label_aware_attention.h"
#include "worker/nn/mlp.h"
#include "worker/nn/retrieval_loss.h"

namespace granary {

struct MindInput : RetrievalInput {
  // [B]: the behaviour sequence's length per sample; the batch is padded to num_steps =
  // max(1, longest length) steps.
  std::vector<int32_t> lengths;
  int num_steps = 1;
  // Per CATEGORICAL step field: the row of each step, sample-major [B * num_steps]
  // (nn::kPaddingRow past a sample's length).
  std::vector<std::vector<int32_t>> step_row_ids;
};

class MindModel : public RetrievalModel {
 public:
  // REQUIRES: model.has_mind(); defaults filled by FillModelDefaults (CreateModel fills them).
  // InvalidArgument as ValidateRetrievalModel (model_config.h).
  static absl::StatusOr<std::unique_ptr<MindModel>> Create(const proto::ModelConfig& model,
                                                           const proto::DatasetConfig& dataset);

  std::unique_ptr<ModelInput> NewInput() const override;
  absl::Status Prepare(const Batch& batch, ModelInput* input) const override;
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  // losses[0]: the in-batch softmax over the positives, as two_tower's.
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;

  // The interest that scores the sample's own item best (the one output(0) scores with): a
  // sample's user vector depends on its item, so queries read interest_vectors() instead.
  const nn::Matrix& user_vectors() const override { return best_interests_; }
  const nn::Matrix& item_vectors() const override { return *item_vectors_; }
  const nn::Matrix* interest_vectors() const override { return &interests_; }
  absl::Span<const int32_t> interest_counts() const override { return counts_; }

  // [B, d]: the label-aware mix of the interests the loss of the last Forward reads.
  const nn::Matrix& trained_user_vectors() const { return *trained_users_; }

 private:
  MindModel(const proto::ModelConfig& model, EmbeddedFields user_fields, EmbeddedFields item_fields,
            std::vector<std::string> step_fields);

  const proto::MindConfig mind_;
  const EmbeddedFields user_fields_;
  const std::string behavior_column_;
  const std::vector<std::string> step_fields_;  // the CATEGORICAL step fields

  nn::InterestRouting routing_;
  nn::Mlp interest_hidden_;
  nn::Dense interest_out_;
  nn::L2Normalize interest_normalize_;
  nn::LabelAwareAttention attention_;
  Tower item_tower_;
  CorrectedInBatchSoftmax softmax_;

  // Forward activations.
  nn::Matrix behaviours_;        // [T * B, fields * dim]
  nn::Matrix profile_;           // [B, slots * dim]
  nn::Matrix interest_input_;    // [K * B, dim + slots * dim]: row k * B + b
  nn::Matrix interests_;         // [B, K * width]
  std::vector<int32_t> counts_;  // [B]: max(1, K_b)
  nn::Matrix best_interests_;    // [B, width]
  const nn::Matrix* item_vectors_ = nullptr;
  const nn::Matrix* trained_users_ = nullptr;
  nn::Matrix no_extra_;

  // Backward scratch.
  nn::Matrix d_users_, d_items_;
  nn::Matrix d_interest_rows_;  // [K * B, width]
  nn::Matrix d_routed_;         // [B, K * dim]
  nn::Matrix d_profile_;        // [B, slots * dim]
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_MIND_MODEL_H_
