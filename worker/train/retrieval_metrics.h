// Retrieval evaluation of a two-tower model: each query (a user vector and the item it
// interacted with next) is scored against the whole item corpus by brute force, and the
// target's rank gives HitRate@K and MRR.
//
// Scores are dot products: every block of up to kQueryBlock queries is one GEMM
// [block, d] x [d, N] against the corpus, so memory stays at kQueryBlock * N floats whatever
// the number of queries. A target's rank is 1 + the number of other items that score at least
// as high (ties count against the target, so a collapsed model that scores everything equal
// ranks every target last rather than first).
//
//   HitRate@K = the fraction of queries whose target ranks <= K
//   MRR       = the mean of 1 / rank over the queries (over the full corpus, no cut-off)
//
// Subsets such as the cold-start split (targets first seen in the evaluation period) are
// evaluated by passing their queries' ranks to RetrievalMetricsOf.
//
// Thread-safe: pure functions of their arguments.
#ifndef GRANARY_WORKER_TRAIN_RETRIEVAL_METRICS_H_
#define GRANARY_WORKER_TRAIN_RETRIEVAL_METRICS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "worker/nn/tensor.h"

namespace granary {

// Queries scored per GEMM: 256 queries against 100k items is 100 MB of scores.
inline constexpr int kQueryBlock = 256;

// Writes each query's target rank in [1, N] into ranks. users [Q, d]: query q's user vector;
// items [N, d]: the corpus; targets [Q]: each query's item row.
// REQUIRES: users.cols() == items.cols(); targets and ranks have Q entries, targets in [0, N).
void RankTargets(const nn::Matrix& users, const nn::Matrix& items,
                 absl::Span<const int32_t> targets, absl::Span<int32_t> ranks);

// As RankTargets for users with several vectors: users [Q, K * d], vector k of query q in
// columns k * d .., of which query q has counts[q] in [1, K]; an item's score is the best of
// the query's vectors (max over k < counts[q]). REQUIRES: users.cols() == K * items.cols()
// for some K >= 1; counts, targets and ranks have Q entries, targets in [0, N).
void RankTargetsBestInterest(const nn::Matrix& users, absl::Span<const int32_t> counts,
                             const nn::Matrix& items, absl::Span<const int32_t> targets,
                             absl::Span<int32_t> ranks);

// Writes the k highest-scoring item rows of each query, best first (ties: lower row first),
// into top [Q * k] row-major. REQUIRES: 0 < k <= N; top has Q * k entries.
void TopK(const nn::Matrix& users, const nn::Matrix& items, int k, absl::Span<int32_t> top);

struct RetrievalMetrics {
  int64_t queries = 0;
  std::vector<int> ks;            // the cut-offs asked for
  std::vector<double> hit_rates;  // HitRate@ks[i]; 0 when there are no queries
  double mrr = 0;
};

// HitRate@k for each k and MRR over the given ranks (each >= 1).
RetrievalMetrics RetrievalMetricsOf(absl::Span<const int32_t> ranks, absl::Span<const int> ks);

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_RETRIEVAL_METRICS_H_
