// RatingFactorization: a biased matrix factorization of explicit ratings,
//
//   rating(user, item) ~ mean + item_bias + user_bias + user_factors . item_factors,
//
// fit by alternating least squares, and the "fold-in" of a user from ratings the fit never saw.
// granary_movielens_convert uses it for the mf_rating column: refit on everything rated before
// each day (output file) and fold in each user from all of their strictly earlier ratings, so a
// user who arrived after the fit (most users of the eval split) is still described.
//
// Only the item side of the fit is kept; users are always folded in by the caller
// (UserFoldIn), from the ratings it chooses, so no feature reads a rating it must not.
#ifndef GRANARY_WORKER_TOOLS_RATING_FACTORIZATION_H_
#define GRANARY_WORKER_TOOLS_RATING_FACTORIZATION_H_

#include <Eigen/Core>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace granary {

struct ObservedRating {
  int user = 0;
  int item = 0;
  double rating = 0;
};

class RatingFactorization {
 public:
  struct Options {
    int factors = 32;
    // The ridge weight on each user's and each item's factors and bias. Large, because most
    // users and items have few ratings (chosen on the MovieLens validation split: 10 beat 5,
    // 20 equalled it).
    double regularization = 10;
    int iterations = 15;
    uint32_t seed = 1;  // of the items' random starting factors
  };

  // Fits `ratings`. Errors: no ratings, or options out of range (factors < 1, iterations < 1,
  // regularization <= 0).
  static absl::StatusOr<RatingFactorization> Fit(absl::Span<const ObservedRating> ratings,
                                                 const Options& options);

  int factors() const { return static_cast<int>(item_factors_.cols()); }
  double regularization() const { return regularization_; }
  double mean() const { return mean_; }
  // True if the fit saw a rating of `item`. An unknown item has bias 0 and factors 0.
  bool Knows(int item) const { return item_rows_.contains(item); }
  double ItemBias(int item) const;
  // The item's factors; zeros for an unknown item.
  Eigen::VectorXd ItemFactors(int item) const;

  // A user described by the ratings added to it, against one fit's items: the user's bias and
  // factors are the ridge regression (same regularization) of each added rating's residual,
  // rating - mean - item_bias, on [item_factors, 1]. Ratings of items the fit does not know
  // are ignored. Copyable; REQUIRES: the fit outlives it.
  class UserFoldIn {
   public:
    explicit UserFoldIn(const RatingFactorization* fit);

    void Add(int item, double rating);
    // How many added ratings the fold-in uses (those of known items).
    int64_t count() const { return count_; }
    // The predicted rating of `item`: mean + item_bias + the user's bias and factors (zero with
    // no rating added) applied to the item.
    double Predict(int item) const;

   private:
    const RatingFactorization* fit_;
    Eigen::MatrixXd gram_;    // sum of x x^T over added ratings, x = [item_factors, 1]
    Eigen::VectorXd moment_;  // sum of x * residual
    int64_t count_ = 0;
  };

 private:
  RatingFactorization() = default;
  // [item_factors, 1] of a known item's row.
  Eigen::VectorXd Design(int row) const;

  double mean_ = 0;
  double regularization_ = 0;
  absl::flat_hash_map<int, int> item_rows_;  // item id -> row of item_factors_ / item_bias_
  Eigen::MatrixXd item_factors_;             // items x factors
  Eigen::VectorXd item_bias_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_RATING_FACTORIZATION_H_
