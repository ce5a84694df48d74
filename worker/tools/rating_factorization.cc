#include "worker/tools/rating_factorization.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace granary {
namespace {

// Starting item factors ~ N(0, kInitialDeviation): small, so that the first user solve is
// driven by the biases.
constexpr double kInitialDeviation = 0.1;

// One side of an alternating step: for every row (user or item) of `ratings_by_row`, the ridge
// regression of its ratings' residuals on the other side's [factors, 1], written into
// `factors` and `bias`.
void SolveSide(const std::vector<std::vector<int>>& ratings_by_row,
               const std::vector<int>& other_row_of_rating, const std::vector<double>& ratings,
               double mean, const Eigen::MatrixXd& other_factors, const Eigen::VectorXd& other_bias,
               double regularization, Eigen::MatrixXd* factors, Eigen::VectorXd* bias) {
  const Eigen::Index k = other_factors.cols();
  size_t most = 0;
  for (const std::vector<int>& rated : ratings_by_row) most = std::max(most, rated.size());
  // design^T is (k + 1) x n, so that SYRK below reads it column by column.
  Eigen::MatrixXd design_transposed(k + 1, static_cast<Eigen::Index>(most));
  Eigen::VectorXd residuals(static_cast<Eigen::Index>(most));
  Eigen::MatrixXd gram(k + 1, k + 1);
  for (size_t row = 0; row < ratings_by_row.size(); ++row) {
    const std::vector<int>& rated = ratings_by_row[row];
    const auto n = static_cast<Eigen::Index>(rated.size());
    for (Eigen::Index j = 0; j < n; ++j) {
      const int rating = rated[j];
      const int other = other_row_of_rating[rating];
      design_transposed.col(j).head(k) = other_factors.row(other).transpose();
      design_transposed(k, j) = 1;
      residuals(j) = ratings[rating] - mean - other_bias(other);
    }
    gram.setZero();
    gram.diagonal().setConstant(regularization);
    gram.selfadjointView<Eigen::Lower>().rankUpdate(design_transposed.leftCols(n));
    const Eigen::VectorXd solution = gram.selfadjointView<Eigen::Lower>().llt().solve(
        design_transposed.leftCols(n) * residuals.head(n));
    factors->row(static_cast<Eigen::Index>(row)) = solution.head(k).transpose();
    (*bias)(static_cast<Eigen::Index>(row)) = solution(k);
  }
}

}  // namespace

absl::StatusOr<RatingFactorization> RatingFactorization::Fit(
    absl::Span<const ObservedRating> ratings, const Options& options) {
  if (ratings.empty()) return absl::InvalidArgumentError("RatingFactorization: no ratings to fit");
  if (options.factors < 1 || options.iterations < 1 || !(options.regularization > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("RatingFactorization: need factors >= 1, iterations >= 1 and "
                     "regularization > 0; got ",
                     options.factors, ", ", options.iterations, ", ", options.regularization));
  }
  RatingFactorization fit;
  fit.regularization_ = options.regularization;
  absl::flat_hash_map<int, int> user_rows;
  std::vector<int> user_of(ratings.size()), item_of(ratings.size());
  std::vector<double> values(ratings.size());
  double sum = 0;
  for (size_t j = 0; j < ratings.size(); ++j) {
    const ObservedRating& r = ratings[j];
    user_of[j] = user_rows.try_emplace(r.user, static_cast<int>(user_rows.size())).first->second;
    item_of[j] =
        fit.item_rows_.try_emplace(r.item, static_cast<int>(fit.item_rows_.size())).first->second;
    values[j] = r.rating;
    sum += r.rating;
  }
  fit.mean_ = sum / static_cast<double>(ratings.size());
  std::vector<std::vector<int>> by_user(user_rows.size()), by_item(fit.item_rows_.size());
  for (size_t j = 0; j < ratings.size(); ++j) {
    by_user[user_of[j]].push_back(static_cast<int>(j));
    by_item[item_of[j]].push_back(static_cast<int>(j));
  }

  const auto num_users = static_cast<Eigen::Index>(by_user.size());
  const auto num_items = static_cast<Eigen::Index>(by_item.size());
  Eigen::MatrixXd user_factors = Eigen::MatrixXd::Zero(num_users, options.factors);
  Eigen::VectorXd user_bias = Eigen::VectorXd::Zero(num_users);
  fit.item_factors_.resize(num_items, options.factors);
  std::mt19937 random(options.seed);
  std::normal_distribution<double> initial(0.0, kInitialDeviation);
  for (Eigen::Index i = 0; i < fit.item_factors_.size(); ++i) {
    fit.item_factors_.data()[i] = initial(random);
  }
  fit.item_bias_ = Eigen::VectorXd::Zero(num_items);
  for (int iteration = 0; iteration < options.iterations; ++iteration) {
    SolveSide(by_user, item_of, values, fit.mean_, fit.item_factors_, fit.item_bias_,
              options.regularization, &user_factors, &user_bias);
    SolveSide(by_item, user_of, values, fit.mean_, user_factors, user_bias, options.regularization,
              &fit.item_factors_, &fit.item_bias_);
  }
  return fit;
}

double RatingFactorization::ItemBias(int item) const {
  const auto it = item_rows_.find(item);
  return it == item_rows_.end() ? 0.0 : item_bias_(it->second);
}

Eigen::VectorXd RatingFactorization::ItemFactors(int item) const {
  const auto it = item_rows_.find(item);
  if (it == item_rows_.end()) return Eigen::VectorXd::Zero(factors());
  return item_factors_.row(it->second).transpose();
}

Eigen::VectorXd RatingFactorization::Design(int row) const {
  Eigen::VectorXd x(factors() + 1);
  x.head(factors()) = item_factors_.row(row).transpose();
  x(factors()) = 1;
  return x;
}

RatingFactorization::UserFoldIn::UserFoldIn(const RatingFactorization* fit)
    : fit_(fit),
      gram_(Eigen::MatrixXd::Zero(fit->factors() + 1, fit->factors() + 1)),
      moment_(Eigen::VectorXd::Zero(fit->factors() + 1)) {}

void RatingFactorization::UserFoldIn::Add(int item, double rating) {
  const auto it = fit_->item_rows_.find(item);
  if (it == fit_->item_rows_.end()) return;
  const Eigen::VectorXd x = fit_->Design(it->second);
  gram_.selfadjointView<Eigen::Lower>().rankUpdate(x);
  moment_ += x * (rating - fit_->mean_ - fit_->item_bias_(it->second));
  ++count_;
}

double RatingFactorization::UserFoldIn::Predict(int item) const {
  double prediction = fit_->mean_;
  Eigen::VectorXd x = Eigen::VectorXd::Zero(fit_->factors() + 1);
  x(fit_->factors()) = 1;  // an unknown item: the user's bias alone
  const auto it = fit_->item_rows_.find(item);
  if (it != fit_->item_rows_.end()) {
    prediction += fit_->item_bias_(it->second);
    x = fit_->Design(it->second);
  }
  if (count_ == 0) return prediction;
  Eigen::MatrixXd regularized = gram_;
  regularized.diagonal().array() += fit_->regularization_;
  const Eigen::VectorXd user = regularized.selfadjointView<Eigen::Lower>().llt().solve(moment_);
  return prediction + user.dot(x);
}

}  // namespace granary
