#include "worker/train/retrieval_metrics.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "glog/logging.h"

namespace granary {

using nn::Matrix;
namespace {

// Calls block_fn(first query, scores [n, N]) for consecutive blocks of queries.
template <typename BlockFn>
void ForEachScoreBlock(const Matrix& users, const Matrix& items, BlockFn block_fn) {
  DCHECK_EQ(users.cols(), items.cols());
  Matrix scores;
  for (Eigen::Index first = 0; first < users.rows(); first += kQueryBlock) {
    const Eigen::Index n = std::min<Eigen::Index>(kQueryBlock, users.rows() - first);
    scores.resize(n, items.rows());
    scores.noalias() = users.middleRows(first, n) * items.transpose();
    block_fn(first, scores);
  }
}

}  // namespace

void RankTargets(const Matrix& users, const Matrix& items, absl::Span<const int32_t> targets,
                 absl::Span<int32_t> ranks) {
  DCHECK_EQ(static_cast<Eigen::Index>(targets.size()), users.rows());
  DCHECK_EQ(ranks.size(), targets.size());
  ForEachScoreBlock(users, items, [&](Eigen::Index first, const Matrix& scores) {
    for (Eigen::Index r = 0; r < scores.rows(); ++r) {
      const int32_t target = targets[first + r];
      DCHECK(target >= 0 && target < items.rows()) << target;
      const float target_score = scores(r, target);
      // Counts the target itself too: rank = 1 + the others at or above it.
      ranks[first + r] = static_cast<int32_t>((scores.row(r).array() >= target_score).count());
    }
  });
}

void RankTargetsBestInterest(const Matrix& users, absl::Span<const int32_t> counts,
                             const Matrix& items, absl::Span<const int32_t> targets,
                             absl::Span<int32_t> ranks) {
  const Eigen::Index dim = items.cols();
  DCHECK(dim > 0 && users.cols() % dim == 0) << users.cols() << " " << dim;
  DCHECK_EQ(static_cast<Eigen::Index>(counts.size()), users.rows());
  DCHECK_EQ(static_cast<Eigen::Index>(targets.size()), users.rows());
  DCHECK_EQ(ranks.size(), targets.size());
  const int num_interests = static_cast<int>(users.cols() / dim);
  Matrix best, scores;
  for (Eigen::Index first = 0; first < users.rows(); first += kQueryBlock) {
    const Eigen::Index n = std::min<Eigen::Index>(kQueryBlock, users.rows() - first);
    best.setConstant(n, items.rows(), -std::numeric_limits<float>::infinity());
    for (int k = 0; k < num_interests; ++k) {
      scores.resize(n, items.rows());
      scores.noalias() = users.block(first, k * dim, n, dim) * items.transpose();
      for (Eigen::Index r = 0; r < n; ++r) {
        if (k < counts[first + r]) best.row(r) = best.row(r).cwiseMax(scores.row(r));
      }
    }
    for (Eigen::Index r = 0; r < n; ++r) {
      const int32_t target = targets[first + r];
      DCHECK(target >= 0 && target < items.rows()) << target;
      // Counts the target itself too: rank = 1 + the others at or above it.
      ranks[first + r] = static_cast<int32_t>((best.row(r).array() >= best(r, target)).count());
    }
  }
}

void TopK(const Matrix& users, const Matrix& items, int k, absl::Span<int32_t> top) {
  DCHECK(k > 0 && k <= items.rows()) << k;
  DCHECK_EQ(static_cast<Eigen::Index>(top.size()), users.rows() * k);
  std::vector<int32_t> order(static_cast<size_t>(items.rows()));
  ForEachScoreBlock(users, items, [&](Eigen::Index first, const Matrix& scores) {
    for (Eigen::Index r = 0; r < scores.rows(); ++r) {
      const auto row = scores.row(r);
      std::iota(order.begin(), order.end(), 0);
      auto better = [&row](int32_t a, int32_t b) {
        return row(a) > row(b) || (row(a) == row(b) && a < b);
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
      std::copy(order.begin(), order.begin() + k, top.begin() + (first + r) * k);
    }
  });
}

RetrievalMetrics RetrievalMetricsOf(absl::Span<const int32_t> ranks, absl::Span<const int> ks) {
  RetrievalMetrics metrics;
  metrics.queries = static_cast<int64_t>(ranks.size());
  metrics.ks.assign(ks.begin(), ks.end());
  metrics.hit_rates.assign(ks.size(), 0.0);
  if (ranks.empty()) return metrics;
  double reciprocal_sum = 0;
  for (int32_t rank : ranks) {
    DCHECK_GE(rank, 1);
    reciprocal_sum += 1.0 / rank;
    for (size_t i = 0; i < ks.size(); ++i) metrics.hit_rates[i] += rank <= ks[i];
  }
  const double n = static_cast<double>(ranks.size());
  for (double& hits : metrics.hit_rates) hits /= n;
  metrics.mrr = reciprocal_sum / n;
  return metrics;
}

}  // namespace granary
