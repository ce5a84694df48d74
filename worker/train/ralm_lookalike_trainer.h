// RalmLookalikeTrainer: trains and evaluates RALM's look-alike stage (worker/models/
// ralm_lookalike.h) on a time-ordered stream of impressions, with the item representations of
// a SeedStore (worker/models/seed_store.h) refreshed from the same stream.
//
// Every impression is scored against the seeds of its item as of the last Refresh before it,
// which only earlier clicks reached: as served in real time, and so a click is never among the
// seeds it is scored against (which would teach the local attention to look for the user
// rather than for users like it). After each batch the batch's positives join
// their items' seeds, and every refresh_interval impressions the store re-clusters.
//
//   Train(stream)     one epoch: a fresh store, and after each batch an Adam step of the
//                     scorer's weights on the sigmoid cross-entropy of the batch;
//   Evaluate(stream)  continues the store where the last Train left it, refreshing it from the
//                     stream as Train does, with the weights fixed: items that first appear in
//                     `stream` are scored as soon as a Refresh saw their first clicks.
//
// The user vectors are fixed: those of RALM's first stage (or any retrieval model's user tower,
// e.g. a two_tower run's user_vectors.vec). Impressions of users without a vector are skipped.
//
// Not thread-safe.
#ifndef GRANARY_WORKER_TRAIN_RALM_LOOKALIKE_TRAINER_H_
#define GRANARY_WORKER_TRAIN_RALM_LOOKALIKE_TRAINER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "ps/optimizer.h"
#include "ps/row_layout.h"
#include "worker/models/ralm_lookalike.h"
#include "worker/models/seed_store.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

// One shown item: the user's and the item's ids (feature keys) and whether it was clicked.
struct Impression {
  uint64_t user = 0;
  uint64_t item = 0;
  float label = 0;  // >= 0.5: a click, which makes the user one of the item's seeds
};

// The fixed user vectors: row row_of[user] of vectors [users, d].
struct UserVectors {
  nn::Matrix vectors;
  absl::flat_hash_map<uint64_t, int32_t> row_of;
};

struct RalmLookalikeTrainerOptions {
  // kAttention: the item is its seeds' k-means centroids (RALM); kAverage: the mean of its seeds
  // (the average-pooled ablation, the same scorer fed one vector).
  enum class Pooling { kAttention, kAverage };
  Pooling pooling = Pooling::kAttention;
  SeedStoreOptions seeds;
  LookalikeOptions scorer;
  // Impressions per batch (one Adam step each). Default 256.
  int batch_size = 256;
  // Impressions between two Refresh of the seed store. Default 1024.
  int refresh_interval = 1024;
  // Adam (Kingma and Ba, 2015) on the scorer's weights, the servers' own update rule
  // (ps/optimizer.h). Defaults 0.01, 0.9, 0.999, 1e-8.
  float learning_rate = 0.01f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  // Seeds the scorer's initial weights.
  uint64_t seed = 1;
};

// OK, or InvalidArgument naming the first option out of range (e.g. "seeds.clustering.
// num_clusters 0: must be >= 1"): sizes, intervals and iterations below their minimum, a
// learning rate or Adam constant outside its range, a non-finite starting weight.
absl::Status ValidateRalmLookalikeOptions(const RalmLookalikeTrainerOptions& options);

class RalmLookalikeTrainer {
 public:
  // REQUIRES: users outlives the trainer and has at least one column; options valid
  // (ValidateRalmLookalikeOptions).
  RalmLookalikeTrainer(const UserVectors* users, const RalmLookalikeTrainerOptions& options);
  RalmLookalikeTrainer(const RalmLookalikeTrainer&) = delete;
  RalmLookalikeTrainer& operator=(const RalmLookalikeTrainer&) = delete;

  // One epoch over `stream`, oldest first. Returns the mean training loss.
  double Train(absl::Span<const Impression> stream);

  // Writes the logit of every impression of `stream` (oldest first) into scores, NaN where the
  // user has no vector. REQUIRES: scores.size() == stream.size().
  void Evaluate(absl::Span<const Impression> stream, absl::Span<float> scores);

  nn::ParameterSet& params() { return params_; }
  const SeedStore& seed_store() const { return *store_; }

 private:
  // Scores stream[first, last) into scores (if not empty), trains on them if `train`, then
  // adds their clicks to the store and refreshes it when due. Returns the batch's loss total
  // and count.
  std::pair<double, int64_t> RunBatch(absl::Span<const Impression> batch, bool train,
                                      absl::Span<float> scores);
  // Applies each block's gradient to its values with optimizer_.
  void OptimizerStep();

  const UserVectors* const users_;
  const RalmLookalikeTrainerOptions options_;
  nn::ParameterSet params_;
  LookalikeScorer scorer_;
  std::unique_ptr<SeedStore> store_;
  int since_refresh_ = 0;
  // The update rule and, per parameter block, its slots and step count, the block being one
  // row of the optimizer's.
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<std::vector<float>> slots_;
  std::vector<RowMeta> metas_;

  // Batch scratch.
  std::vector<int32_t> kept_;  // the batch's impressions with a user vector
  nn::Matrix batch_users_;
  nn::Matrix batch_seeds_;
  nn::Matrix batch_log_shares_;
  std::vector<int32_t> offsets_;
  std::vector<float> labels_;
  nn::Matrix d_logits_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_RALM_LOOKALIKE_TRAINER_H_
