// TwoTowerModel: the two_tower and dat architectures (common/proto/job.proto): a user tower
// and an item tower (worker/models/tower.h) over pooled embeddings, scored by cosine / temperature.
//
// two_tower (Yi et al., RecSys 2019): trained on the batch's positive samples only, with
//   IN_BATCH_SOFTMAX     each positive's item against the other positives' items, optionally
//                        corrected by -log p_j (StreamingFrequencyEstimator, updated with the
//                        positives' item ids on each Backward), or
//   RANDOM_NEGATIVE_BCE  sigmoid cross-entropy on the positive pair and num_negatives items
//                        drawn uniformly from the batch's other distinct positive items.
// dat (Yu et al., DLP-KDD 2021): the same, and each tower also reads an augmented vector, a
// row of the sparse table keyed by AugmentedKey of the user (item) id, which the
// Adaptive-Mimic Mechanism pulls towards the other tower's output on positives (stop-gradient
// on that output); plus the Category Alignment Loss over the positives' item vectors.
//
// losses[0] is the main loss (softmax or BCE) over the batch's positives; DAT's auxiliary
// losses are reported by auxiliary_losses(), and Backward's gradient is that of
//   loss_weight * main + amm_user_weight * AMM_u + amm_item_weight * AMM_v
//   + category_alignment_weight * CA.
//
// Not thread-safe (as Model).
#ifndef GRANARY_WORKER_MODELS_TWO_TOWER_MODEL_H_
#define GRANARY_WORKER_MODELS_TWO_TOWER_MODEL_H_

#include <memory>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/corrected_in_batch_softmax.h"
#include "worker/models/retrieval_model.h"
#include "worker/models/tower.h"
#include "worker/nn/retrieval_loss.h"

namespace granary {

// The sparse-table key of the DAT augmented vector of the id with feature key `id_key`, for
// the user side (`user` true) or the item side: FeatureKey of the key's 8 bytes in the field
// "dat.user_augment" or "dat.item_augment", so it never collides with a feature's own row.
uint64_t AugmentedKey(uint64_t id_key, bool user);

struct TwoTowerInput : RetrievalInput {
  // DAT: [B] the rows of the augmented vectors, -1 where the id is missing; and the category
  // of each sample's item as a batch-local id (CategoryAlignment::kNoCategory if none).
  std::vector<int32_t> user_augment_rows;
  std::vector<int32_t> item_augment_rows;
  std::vector<int32_t> categories;
};

class TwoTowerModel : public RetrievalModel {
 public:
  // DAT's auxiliary losses of the last Backward (unweighted).
  struct AuxiliaryLosses {
    nn::LossValue amm_user;
    nn::LossValue amm_item;
    nn::LossValue category_alignment;
  };

  // REQUIRES: model.has_two_tower() or model.has_dat(); defaults filled by FillModelDefaults
  // (CreateModel fills them). InvalidArgument as ValidateRetrievalModel (model_config.h).
  static absl::StatusOr<std::unique_ptr<TwoTowerModel>> Create(const proto::ModelConfig& model,
                                                               const proto::DatasetConfig& dataset);

  std::unique_ptr<ModelInput> NewInput() const override;
  absl::Status Prepare(const Batch& batch, ModelInput* input) const override;
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  // The user-side columns are the user tower's fields and (DAT) the user id's augmented vector:
  // when they repeat sample 0's, the user tower runs on sample 0 alone and its vector is
  // copied to every row of user_vectors(); otherwise this runs Forward. Backward does not
  // follow it.
  void ForwardOneUser(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;
  const nn::Matrix& user_vectors() const override { return *user_vectors_; }
  const nn::Matrix& item_vectors() const override { return *item_vectors_; }

  const AuxiliaryLosses& auxiliary_losses() const { return auxiliary_; }
  // Restarts the negative sampling of RANDOM_NEGATIVE_BCE from `seed`, so that a Backward can
  // be replayed with the same negatives (gradient checks).
  void set_negative_seed(uint64_t seed) { negative_rng_.seed(seed); }
  // DAT: the augmented vectors a_u, a_v [B, dim] of the last Forward (zero rows where the id
  // is missing).
  const nn::Matrix& user_augmented() const { return user_augmented_; }
  const nn::Matrix& item_augmented() const { return item_augmented_; }

 private:
  TwoTowerModel(const proto::ModelConfig& model, EmbeddedFields user_fields,
                EmbeddedFields item_fields, bool category_multi);
  // Backward of the main loss over the positives: writes d_user_vectors_, d_item_vectors_.
  nn::LossValue MainLossBackward(const TwoTowerInput& input);

  const bool dat_;
  const proto::TwoTowerConfig towers_;
  const proto::DatConfig dat_config_;
  const bool category_multi_;
  std::mt19937_64 negative_rng_;

  Tower user_tower_;
  Tower item_tower_;
  CorrectedInBatchSoftmax softmax_;
  nn::CategoryAlignment alignment_;
  AuxiliaryLosses auxiliary_;

  const nn::Matrix* user_vectors_ = nullptr;
  const nn::Matrix* item_vectors_ = nullptr;
  nn::Matrix user_augmented_;
  nn::Matrix item_augmented_;
  // ForwardOneUser: sample 0's user fields, and its user vector repeated over the batch.
  std::vector<SlotRows> first_user_slots_;
  nn::Matrix repeated_user_vectors_;

  // Backward scratch.
  std::vector<int32_t> positives_;
  std::vector<uint64_t> positive_items_;
  std::vector<nn::ScoredPair> pairs_;
  nn::Matrix positive_users_, positive_items_vectors_;
  nn::Matrix d_positive_users_, d_positive_items_;
  nn::Matrix d_user_vectors_, d_item_vectors_;
  nn::Matrix d_scratch_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_TWO_TOWER_MODEL_H_
