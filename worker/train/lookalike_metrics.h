// Precision@K of a look-alike model, the metric of the RALM paper (Liu et al., KDD 2019): for
// each item, the users it was shown to ranked by the model's score; precision@K is the share
// of clickers among the top K. Items shown to fewer than K users are left out.
//
// Ties are broken against the model (a negative ranks above a positive of the same score), as
// retrieval ranks are (retrieval_metrics.h): a model that scores everything equal gets the
// precision of its worst ordering, not its best.
//
// Thread-safe: a pure function of its arguments.
#ifndef GRANARY_WORKER_TRAIN_LOOKALIKE_METRICS_H_
#define GRANARY_WORKER_TRAIN_LOOKALIKE_METRICS_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace granary {

struct ItemScoredLabel {
  uint64_t item = 0;
  float score = 0;
  float label = 0;  // >= 0.5: the user clicked
};

struct PrecisionAtK {
  double precision = 0;  // the mean over the items counted
  int64_t items = 0;     // items shown to at least K users
};

// The mean precision@k over the items of `examples` shown to at least k users, or nullopt if
// there is none. REQUIRES: k >= 1.
std::optional<PrecisionAtK> MeanPrecisionAtK(std::vector<ItemScoredLabel> examples, int k);

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_LOOKALIKE_METRICS_H_
