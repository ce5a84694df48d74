// ItemItemRegression: EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
// WWW 2019), a linear item-to-item model of which items users pick. With X the users x items
// 0/1 matrix of who rated what, the weights B minimize ||X - X B||^2 + regularization ||B||^2
// subject to diag(B) = 0, in closed form: P = (X^T X + regularization I)^-1 and
// B[i][j] = -P[i][j] / P[j][j] for i != j. A user's score for item j is the sum of B[i][j] over
// the items i they picked: how strongly their choices predict j.
//
// granary_movielens_convert uses it for the ease_liked_score column, refit with the other
// daily models on every rating before each output file. B is dense (items^2 doubles, 22 MB for
// MovieLens-100K's 1,682 movies) and the fit inverts an items x items matrix: a tool for
// catalogues of a few thousand items, not for the parameter servers' tables.
#ifndef GRANARY_WORKER_TOOLS_ITEM_ITEM_REGRESSION_H_
#define GRANARY_WORKER_TOOLS_ITEM_ITEM_REGRESSION_H_

#include <Eigen/Core>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace granary {

class ItemItemRegression {
 public:
  // A user picked (rated, clicked, bought) an item; repeats count once.
  struct Pick {
    int user = 0;
    int item = 0;
  };

  // Fits `picks`. Errors: no picks, regularization <= 0, or more than max_items distinct
  // items (the dense fit's memory bound).
  static absl::StatusOr<ItemItemRegression> Fit(absl::Span<const Pick> picks, double regularization,
                                                int max_items = 20000);

  int num_items() const { return static_cast<int>(rows_.size()); }
  bool Knows(int item) const { return rows_.contains(item); }
  // B[from][to]: 0 if either item is unknown or they are the same.
  double Weight(int from, int to) const;

 private:
  ItemItemRegression() = default;

  absl::flat_hash_map<int, int> rows_;  // item id -> row and column of weights_
  Eigen::MatrixXd weights_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_ITEM_ITEM_REGRESSION_H_
