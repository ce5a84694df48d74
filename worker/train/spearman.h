// Spearman's rank correlation: the Pearson correlation of the two sides' ranks, tied values
// sharing the mean of the ranks they span (mid-ranks), so ties neither help nor hurt.
//
// Used to compare a predicted popularity of new items with the observed or planted one
// (worker/train/retrieval_evaluator.h, tests/cluster/synthetic_retrieval_test.cc).
//
// Thread-safe: pure functions of their arguments.
#ifndef GRANARY_WORKER_TRAIN_SPEARMAN_H_
#define GRANARY_WORKER_TRAIN_SPEARMAN_H_

#include <optional>
#include <vector>

#include "absl/types/span.h"

namespace granary {

// The 1-based rank of each value in ascending order; tied values get their mean rank.
std::vector<double> MidRanks(absl::Span<const double> values);

// Spearman's rho of x and y in [-1, 1]; nullopt when they have fewer than 2 entries, or when
// either side is constant (no ranking to compare). REQUIRES: x.size() == y.size().
std::optional<double> Spearman(absl::Span<const double> x, absl::Span<const double> y);

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_SPEARMAN_H_
