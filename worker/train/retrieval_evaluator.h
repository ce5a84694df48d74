// RetrievalEvaluator: retrieval metrics of a RetrievalModel (worker/models/retrieval_model.h) over
// the whole item corpus, overall and on the cold-start split, and the export of its vectors.
//
// The trainer feeds it the model's Forward over every training batch (AddTrainBatch) and then
// every evaluation batch (AddEvalBatch), with the model as trained:
//   - the corpus is every item of either pass, keyed by the item id's feature key. An item of
//     the training data (warm) keeps its vector from its last training sample (its features,
//     e.g. statistics, as of the end of training); an item first seen in the evaluation data
//     (cold: a new arrival) keeps its vector from its first evaluation sample, computed with
//     the model's cold_item_vectors() when it has them (ATNN's generator);
//   - each positive evaluation sample is a query: its user vector against the whole corpus,
//     its item the target (RankTargets; ties count against the target); a model with several
//     vectors per user (interest_vectors(), MIND) scores an item by the user's best vector
//     (RankTargetsBestInterest). The cold split
//     is the queries whose target is cold.
//   - the popularity of new arrivals: when the model predicts it (NewItemPopularity, from the
//     cold items' corpus vectors), its Spearman rank correlation with the number of positive
//     evaluation samples of each cold item;
//   - AUC of the model's score against the task label over the evaluation samples, split into
//     warm and cold items (cold ones scored with cold_item_vectors() when the model has them).
//
// Thread-compatible.
#ifndef GRANARY_WORKER_TRAIN_RETRIEVAL_EVALUATOR_H_
#define GRANARY_WORKER_TRAIN_RETRIEVAL_EVALUATOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "worker/models/retrieval_model.h"
#include "worker/train/metrics.h"
#include "worker/train/retrieval_metrics.h"

namespace granary {

struct RetrievalEvaluation {
  int64_t corpus_items = 0;
  int64_t cold_items = 0;
  RetrievalMetrics overall;
  RetrievalMetrics cold;
  // AUC of the score against the label on evaluation samples of warm / cold items.
  int64_t warm_samples = 0;
  int64_t cold_samples = 0;
  std::optional<double> warm_auc;
  std::optional<double> cold_auc;
  // Spearman correlation of predicted and observed popularity over the cold items; nullopt if
  // the model predicts none, there are fewer than 2 cold items, or either side is constant.
  std::optional<double> new_item_popularity_spearman;
};

class RetrievalEvaluator {
 public:
  RetrievalEvaluator() = default;
  RetrievalEvaluator(const RetrievalEvaluator&) = delete;
  RetrievalEvaluator& operator=(const RetrievalEvaluator&) = delete;

  // REQUIRES: model.Forward(input, ...) was the model's last Forward.
  void AddTrainBatch(const RetrievalInput& input, const RetrievalModel& model);
  void AddEvalBatch(const RetrievalInput& input, const RetrievalModel& model);

  // Ranks every query; HitRate at each of `ks`. `model` is the one of the batches added (for
  // its popularity prediction).
  RetrievalEvaluation Evaluate(absl::Span<const int> ks, const RetrievalModel& model) const;

  // Writes the corpus (ITEM) and the user vector of each evaluation user's last sample (USER)
  // as vector files (common/vector_file.h). FailedPrecondition if no batch was added; else the
  // first error, naming the file.
  absl::Status ExportVectors(const std::string& user_path, const std::string& item_path,
                             const std::string& source) const;

 private:
  // Appends the vector to *values and returns its row, or overwrites row `*row` if >= 0.
  static void Store(const float* vector, int dim, std::vector<float>* values, int32_t* row);

  int dim_ = 0;
  absl::flat_hash_set<uint64_t> train_items_;
  absl::flat_hash_map<uint64_t, int32_t> item_row_;  // item key -> corpus row
  std::vector<uint64_t> item_keys_;                  // corpus row -> item key
  std::vector<float> item_values_;                   // corpus rows [items, dim]
  std::vector<int64_t> item_positives_;              // corpus row -> positive eval samples
  absl::flat_hash_map<uint64_t, int32_t> user_row_;
  std::vector<uint64_t> user_keys_;
  std::vector<float> user_values_;
  // [queries, query_width_]: a user vector each, or K of them when the model has several
  // (RetrievalModel::interest_vectors), query_counts_ then giving how many each query uses.
  int query_width_ = 0;
  std::vector<float> query_values_;
  std::vector<int32_t> query_counts_;
  std::vector<uint64_t> query_targets_;
  std::vector<ScoredLabel> warm_scores_;
  std::vector<ScoredLabel> cold_scores_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_RETRIEVAL_EVALUATOR_H_
