// AtnnModel: the atnn architecture (common/proto/job.proto), the Adversarial Two-Tower Neural
// Network of Wang et al., ICDE 2021, for new items' popularity.
//
//   user tower      u     = Tower(user fields)
//   item encoder    v_enc = Tower(item profile fields | item statistics)
//   item generator  v_gen = Tower(item profile fields)          (same embedding rows)
//   logit of a pair       = <u, v> / temperature, v = v_enc if the item has statistics, else
//                           v_gen (a new arrival: nothing observed about it yet)
//
// Backward alternates, counting its calls (step):
//   even steps  the CTR loss, sigmoid cross-entropy of <u, v_enc> / tau against the task
//               label, trains the user tower, the encoder and their embedding rows;
//   odd steps   the generator's CTR loss <u, v_gen> / tau, with the user tower held fixed,
//               plus similarity_weight * |v_gen - sg(v_enc)|^2 (mean over labelled samples),
//               trains the generator and the item rows it reads.
// losses[0] is the step's CTR loss; similarity_loss() the odd step's similarity term.
//
// Popularity of new arrivals: mean over users of <u, v> is <mean u, v>, so a stored mean user
// vector ranks any number of new items in O(d) each, without a pass over the users.
// mean_user_vector() is the mean of the user vectors of every labelled training sample seen
// on even steps (active users, weighted by activity), or, once the trainer recomputed it with
// the final model (StartActiveUsers / AddActiveUsers), of every labelled training sample.
//
// Not thread-safe (as Model).
#ifndef GRANARY_WORKER_MODELS_ATNN_MODEL_H_
#define GRANARY_WORKER_MODELS_ATNN_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/numeric_fields.h"
#include "worker/models/retrieval_model.h"
#include "worker/models/tower.h"
#include "worker/nn/retrieval_loss.h"

namespace granary {

struct AtnnInput : RetrievalInput {
  nn::Matrix statistics;                // [B, statistics columns]; 0 where missing
  std::vector<uint8_t> has_statistics;  // [B]: the first column present and non-zero
};

// Writes <mean_user.row(0), items.row(i)> into scores[i]: ATNN's predicted popularity of the
// items [N, d] given the mean user vector [1, d] (the one definition the trainer's evaluation
// and granary_serve's POST /popularity share).
void PopularityScores(const nn::Matrix& mean_user, const nn::Matrix& items,
                      absl::Span<float> scores);

class AtnnModel : public RetrievalModel {
 public:
  // REQUIRES: model.has_atnn(); defaults filled by FillModelDefaults (CreateModel fills
  // them). InvalidArgument as ValidateRetrievalModel (model_config.h).
  static absl::StatusOr<std::unique_ptr<AtnnModel>> Create(const proto::ModelConfig& model,
                                                           const proto::DatasetConfig& dataset);

  std::unique_ptr<ModelInput> NewInput() const override;
  absl::Status Prepare(const Batch& batch, ModelInput* input) const override;
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;
  const nn::Matrix& user_vectors() const override { return *user_vectors_; }
  const nn::Matrix& item_vectors() const override { return item_vectors_; }
  // New arrivals are scored by the generator.
  const nn::Matrix* cold_item_vectors() const override { return generator_vectors_; }
  // PopularityScores.
  bool NewItemPopularity(const nn::Matrix& items, absl::Span<float> scores) const override {
    PopularityScores(items, scores);
    return true;
  }
  // The mean user vector restarts from the final model's vectors of the labelled samples
  // passed to AddActiveUsers.
  void StartActiveUsers() override;
  void AddActiveUsers(const RetrievalInput& input) override;

  // [B, d] of the last Forward.
  const nn::Matrix& encoder_vectors() const { return *encoder_vectors_; }
  const nn::Matrix& generator_vectors() const { return *generator_vectors_; }

  // The number of Backward calls so far; the next one is a generator step if it is odd.
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  const nn::LossValue& similarity_loss() const { return similarity_; }

  // [1, d]: the mean user vector (zeros before any training step).
  nn::Matrix mean_user_vector() const;
  // Writes <mean user vector, items.row(i)> into scores[i]: items [N, d] from the generator.
  void PopularityScores(const nn::Matrix& items, absl::Span<float> scores) const;

 private:
  AtnnModel(const proto::ModelConfig& model, EmbeddedFields user_fields, EmbeddedFields item_fields,
            NumericFields statistics);

  const proto::AtnnConfig config_;
  const NumericFields statistics_;

  Tower user_tower_;
  Tower encoder_;
  Tower generator_;

  int64_t step_ = 0;
  nn::LossValue similarity_;
  Eigen::VectorXd user_vector_sum_;
  int64_t user_vector_count_ = 0;

  const nn::Matrix* user_vectors_ = nullptr;
  const nn::Matrix* encoder_vectors_ = nullptr;
  const nn::Matrix* generator_vectors_ = nullptr;
  nn::Matrix item_vectors_;

  // Backward scratch.
  std::vector<nn::ScoredPair> pairs_;
  nn::Matrix d_users_, d_items_, d_similarity_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_ATNN_MODEL_H_
