#include "worker/train/lookalike_metrics.h"

#include <algorithm>

#include "glog/logging.h"

namespace granary {
namespace {

constexpr float kPositiveLabel = 0.5f;

}  // namespace

std::optional<PrecisionAtK> MeanPrecisionAtK(std::vector<ItemScoredLabel> examples, int k) {
  CHECK_GE(k, 1);
  // By item, then best score first, then negatives first among equal scores.
  std::sort(examples.begin(), examples.end(),
            [](const ItemScoredLabel& a, const ItemScoredLabel& b) {
              if (a.item != b.item) return a.item < b.item;
              if (a.score != b.score) return a.score > b.score;
              return a.label < b.label;
            });
  PrecisionAtK result;
  double sum = 0;
  for (size_t first = 0; first < examples.size();) {
    size_t last = first;
    while (last < examples.size() && examples[last].item == examples[first].item) ++last;
    if (last - first >= static_cast<size_t>(k)) {
      int clicked = 0;
      for (size_t i = first; i < first + k; ++i) clicked += examples[i].label >= kPositiveLabel;
      sum += static_cast<double>(clicked) / k;
      ++result.items;
    }
    first = last;
  }
  if (result.items == 0) return std::nullopt;
  result.precision = sum / static_cast<double>(result.items);
  return result;
}

}  // namespace granary
