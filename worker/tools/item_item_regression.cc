#include "worker/tools/item_item_regression.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace granary {

absl::StatusOr<ItemItemRegression> ItemItemRegression::Fit(absl::Span<const Pick> picks,
                                                           double regularization, int max_items) {
  if (picks.empty()) return absl::InvalidArgumentError("ItemItemRegression: no picks to fit");
  if (!(regularization > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ItemItemRegression: regularization must be > 0, not ", regularization));
  }
  ItemItemRegression fit;
  absl::flat_hash_map<int, std::vector<int>> rows_by_user;
  for (const Pick& pick : picks) {
    const int row =
        fit.rows_.try_emplace(pick.item, static_cast<int>(fit.rows_.size())).first->second;
    rows_by_user[pick.user].push_back(row);
  }
  const auto n = static_cast<Eigen::Index>(fit.rows_.size());
  if (n > max_items) {
    return absl::ResourceExhaustedError(absl::StrCat("ItemItemRegression: ", n,
                                                     " distinct items, more than max_items ",
                                                     max_items, " (the fit is dense)"));
  }
  // The Gram matrix X^T X: co-pick counts, each user's items counted once.
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(n, n);
  for (auto& [user, rows] : rows_by_user) {
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    for (const int a : rows) {
      for (const int b : rows) gram(a, b) += 1;
    }
  }
  gram.diagonal().array() += regularization;
  // Positive definite (regularization > 0), so Cholesky inverts it.
  const Eigen::MatrixXd inverse = gram.llt().solve(Eigen::MatrixXd::Identity(n, n));
  fit.weights_.resize(n, n);
  for (Eigen::Index to = 0; to < n; ++to) {
    fit.weights_.col(to) = -inverse.col(to) / inverse(to, to);
    fit.weights_(to, to) = 0;
  }
  return fit;
}

double ItemItemRegression::Weight(int from, int to) const {
  const auto from_row = rows_.find(from);
  const auto to_row = rows_.find(to);
  if (from_row == rows_.end() || to_row == rows_.end()) return 0;
  return weights_(from_row->second, to_row->second);
}

}  // namespace granary
