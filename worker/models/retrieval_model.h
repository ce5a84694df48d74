// RetrievalModel: a Model (worker/models/model.h) of the two-tower family, which maps a sample's
// user and item to one vector each; the score of a pair is their dot product / temperature. Besides
// the Model contract it exposes the vectors of the last Forward, and the id of each sample's
// user and item, for retrieval evaluation over the whole corpus and for exporting vectors
// (worker/train/retrieval_evaluator.h).
//
// A retrieval model has exactly one task, BINARY; its label marks the positives
// (label >= kPositiveLabel) and output(0) is the logit <user, item> / temperature.
//
// Not thread-safe (as Model).
#ifndef GRANARY_WORKER_MODELS_RETRIEVAL_MODEL_H_
#define GRANARY_WORKER_MODELS_RETRIEVAL_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/batch.h"
#include "worker/models/embedded_fields.h"
#include "worker/models/model.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

inline constexpr float kPositiveLabel = 0.5f;

// The per-batch input every retrieval model shares.
struct RetrievalInput : ModelInput {
  std::vector<SlotRows> user_slots;  // the user tower's fields
  std::vector<SlotRows> item_slots;  // the item tower's fields
  // [B]: the feature keys of the user and item id columns, and whether the cell had one.
  std::vector<uint64_t> user_ids;
  std::vector<uint64_t> item_ids;
  std::vector<uint8_t> has_user_id;
  std::vector<uint8_t> has_item_id;
  // [B]: 1 where the task's label is present and >= kPositiveLabel.
  std::vector<uint8_t> positive;
};

class RetrievalModel : public Model {
 public:
  // Model: output(0) [B, 1], the logits of the last Forward.
  const nn::Matrix& output(int task) const override;
  nn::ParameterSet& params() override { return params_; }
  int embedding_dim() const override { return dim_; }
  const std::vector<proto::TaskConfig>& tasks() const override { return tasks_; }

  // [B, d]: the normalized user and item vectors of the last Forward (the item vector the
  // model scores the sample's item with).
  virtual const nn::Matrix& user_vectors() const = 0;
  virtual const nn::Matrix& item_vectors() const = 0;
  // [B, K * d]: the several vectors of each user of the last Forward, vector k of sample b in
  // columns k * d .., of which sample b has interest_counts()[b] in [1, K] (later ones are
  // ignored); or null when the model has one vector per user (user_vectors()). A query then
  // scores an item by its best vector (max over k), as MIND serves.
  virtual const nn::Matrix* interest_vectors() const { return nullptr; }
  virtual absl::Span<const int32_t> interest_counts() const { return {}; }
  // [B, d]: the vectors the model gives items it has never seen (new arrivals), or null when
  // it has no special path for them (they get item_vectors()).
  virtual const nn::Matrix* cold_item_vectors() const { return nullptr; }
  // Writes the predicted popularity of each row of items [N, d] (vectors of new items, as from
  // cold_item_vectors()) into scores [N] and returns true, or returns false when the model
  // makes no such prediction.
  virtual bool NewItemPopularity(const nn::Matrix& /*items*/, absl::Span<float> /*scores*/) const {
    return false;
  }
  // Recomputes what NewItemPopularity needs from the final model: StartActiveUsers, then
  // AddActiveUsers(input) after the Forward of every training batch. A replica that trained
  // only its share of the input (or none: the work queue handed it no chunk) would otherwise
  // know only the users it saw, with stale vectors.
  virtual void StartActiveUsers() {}
  virtual void AddActiveUsers(const RetrievalInput& /*input*/) {}

 protected:
  // REQUIRES: defaults filled (FillModelDefaults), so retrieval.temperature() is set.
  RetrievalModel(const proto::ModelConfig& model, const proto::RetrievalConfig& retrieval);

  // Sets the logits of output(0), [B, 1] = rowwise <users, items> / temperature_.
  void ScorePairs(const nn::Matrix& users, const nn::Matrix& items);

  const int dim_;
  const float temperature_;
  const std::vector<proto::TaskConfig> tasks_;
  nn::ParameterSet params_;  // before the towers of the derived class, which point into it

 private:
  nn::Matrix logits_;
};

// Fills the RetrievalInput part of *input from `batch`: the task labels, the towers' slots and
// the ids. InvalidArgument naming a column the batch lacks.
absl::Status PrepareRetrievalInput(const Batch& batch, const std::vector<proto::TaskConfig>& tasks,
                                   const EmbeddedFields& user_fields,
                                   const EmbeddedFields& item_fields,
                                   const proto::RetrievalConfig& retrieval, RetrievalInput* input);

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_RETRIEVAL_MODEL_H_
