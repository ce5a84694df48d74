#include "worker/train/metrics.h"

#include <algorithm>
#include <cmath>

#include "glog/logging.h"

namespace granary {

using nn::Matrix;
namespace {

constexpr float kPositiveThreshold = 0.5f;

}  // namespace

std::optional<double> Auc(std::vector<ScoredLabel> examples) {
  std::sort(examples.begin(), examples.end(),
            [](const ScoredLabel& a, const ScoredLabel& b) { return a.score < b.score; });
  // Ranks are 1-based; a run of equal scores shares the mean of the ranks it spans.
  double positive_rank_sum = 0.0;
  int64_t positives = 0;
  const size_t n = examples.size();
  for (size_t begin = 0; begin < n;) {
    size_t end = begin + 1;
    while (end < n && examples[end].score == examples[begin].score) ++end;
    const double mid_rank = 0.5 * static_cast<double>(begin + 1 + end);
    for (size_t i = begin; i < end; ++i) {
      if (examples[i].label >= kPositiveThreshold) {
        ++positives;
        positive_rank_sum += mid_rank;
      }
    }
    begin = end;
  }
  const int64_t negatives = static_cast<int64_t>(n) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1.0) / 2.0) / (p * static_cast<double>(negatives));
}

std::optional<double> LogLoss(absl::Span<const ScoredLabel> examples) {
  if (examples.empty()) return std::nullopt;
  double total = 0.0;
  for (const ScoredLabel& example : examples) {
    const double p = std::clamp<double>(example.score, kLogLossEpsilon, 1.0 - kLogLossEpsilon);
    const double y = example.label;
    total -= y * std::log(p) + (1.0 - y) * std::log1p(-p);
  }
  return total / static_cast<double>(examples.size());
}

std::optional<double> Rmse(absl::Span<const ScoredLabel> examples) {
  if (examples.empty()) return std::nullopt;
  double total = 0.0;
  for (const ScoredLabel& example : examples) {
    const double error = static_cast<double>(example.score) - example.label;
    total += error * error;
  }
  return std::sqrt(total / static_cast<double>(examples.size()));
}

std::optional<double> Accuracy(const Matrix& logits, absl::Span<const int32_t> labels) {
  DCHECK_EQ(static_cast<Eigen::Index>(labels.size()), logits.rows());
  if (logits.rows() == 0) return std::nullopt;
  int64_t correct = 0;
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    Eigen::Index predicted = 0;
    logits.row(i).maxCoeff(&predicted);
    correct += predicted == labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(logits.rows());
}

}  // namespace granary
