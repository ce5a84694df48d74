#include "worker/tools/movielens_features.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "worker/tools/item_item_regression.h"
#include "worker/tools/rating_factorization.h"

namespace granary {
namespace {

// item_cf_mean: a similarity from n co-raters is shrunk by n / (n + kSimilarityShrinkage), so
// that a pair rated by a handful of users weighs little (measured on the validation split:
// 5 and 20 within 0.001 AUC).
constexpr double kSimilarityShrinkage = 5.0;
// ease_liked_score's ridge weight (Steck's paper uses a few hundred on larger data; 100 and
// 500 were within 0.001 AUC on the validation split with trees, 100 slightly ahead).
constexpr double kItemItemRegularization = 100;
// history_recent_mean averages this many of the history's latest ratings: the user's mood of
// the current session, beside history_mean's longer window.
constexpr size_t kRecentHistory = 5;
// Means and predictions are written minus the middle of the 1..5 scale; a movie without
// earlier ratings has this mean.
constexpr double kMiddleRating = 3.0;

}  // namespace

std::string FormatStatistic(double value) { return absl::StrFormat("%.4f", value); }

void AppendHistorySummary(absl::Span<const Behaviour> history, std::string* line) {
  if (history.empty()) {
    absl::StrAppend(line, "\t\t\t\t");
    return;
  }
  int64_t sum = 0, liked = 0, recent_sum = 0;
  for (size_t i = 0; i < history.size(); ++i) {
    sum += history[i].rating;
    liked += history[i].rating >= kClickMinRating;
    if (i + kRecentHistory >= history.size()) recent_sum += history[i].rating;
  }
  const double n = static_cast<double>(history.size());
  const double recent = static_cast<double>(std::min(history.size(), kRecentHistory));
  absl::StrAppend(line, "\t", FormatStatistic(sum / n - kMiddleRating), "\t",
                  FormatStatistic(history.back().rating - kMiddleRating), "\t",
                  FormatStatistic(liked / n - 0.5), "\t",
                  FormatStatistic(recent_sum / recent - kMiddleRating));
}

// EarlierRatings' state; its methods do what the header says of EarlierRatings'.
class EarlierRatings::Impl {
 public:
  Impl(const absl::flat_hash_map<int, Movie>* movies, size_t genres, size_t history)
      : movies_(movies), num_genres_(genres), history_(history) {}

  void Describe(const Rating& r, std::string* line) const {
    const Movie& movie = movies_->at(r.movie);
    const auto movie_it = movies_seen_.find(r.movie);
    const Totals no_ratings;
    const Totals& movie_totals = movie_it == movies_seen_.end() ? no_ratings : movie_it->second;
    const auto user_it = users_.find(r.user);
    const UserRatings* user = user_it == users_.end() ? nullptr : &user_it->second;
    const Totals& user_totals = user == nullptr ? no_ratings : user->totals;

    absl::StrAppend(line, "\t", FormatStatistic(std::log1p(movie_totals.count)), "\t",
                    MeanMinusMiddle(movie_totals), "\t",
                    FormatStatistic(std::log1p(user_totals.count)), "\t",
                    MeanMinusMiddle(user_totals), "\t");
    if (user == nullptr) {
      // No earlier rating: user_bias, user_genre_mean are empty.
      absl::StrAppend(line, "\t");
    } else {
      absl::StrAppend(line, FormatStatistic(user->residual_sum / user_totals.count), "\t");
      int64_t genre_count = 0, genre_sum = 0;
      for (int g : movie.genre_ids) {
        genre_count += user->genres[g].count;
        genre_sum += user->genres[g].sum;
      }
      if (genre_count > 0) {
        absl::StrAppend(line,
                        FormatStatistic(static_cast<double>(genre_sum) / genre_count -
                                        static_cast<double>(user_totals.sum) / user_totals.count));
      }
    }
    absl::StrAppend(line, "\t");
    if (movie.release_year > 0) {
      const int64_t rating_year =
          absl::ToCivilYear(absl::FromUnixSeconds(r.timestamp), absl::UTCTimeZone()).year();
      absl::StrAppend(line, FormatStatistic(std::log1p(static_cast<double>(
                                std::max<int64_t>(0, rating_year - movie.release_year)))));
    }
    absl::StrAppend(line, "\t");
    if (user != nullptr) {
      const double user_mean = static_cast<double>(user_totals.sum) / user_totals.count;
      double weighted_sum = 0, weight_sum = 0;
      const size_t first = user->rated.size() - std::min(user->rated.size(), history_);
      for (size_t i = first; i < user->rated.size(); ++i) {
        const auto pair = pairs_.find(PairKey(user->rated[i].movie, r.movie));
        if (pair == pairs_.end()) continue;
        weighted_sum += pair->second.co_raters * (user->rated[i].rating - user_mean);
        weight_sum += pair->second.co_raters;
      }
      if (weight_sum > 0) absl::StrAppend(line, FormatStatistic(weighted_sum / weight_sum));
      absl::StrAppend(line, "\t");
      weighted_sum = weight_sum = 0;
      for (const RatedMovie& earlier : user->rated) {
        const double similarity = Similarity(earlier.movie, r.movie);
        weighted_sum += similarity * (earlier.rating - user_mean);
        weight_sum += std::abs(similarity);
      }
      if (weight_sum > 0) absl::StrAppend(line, FormatStatistic(weighted_sum / weight_sum));
    } else {
      absl::StrAppend(line, "\t");
    }
  }

  double Similarity(int movie_a, int movie_b) const {
    const auto pair = pairs_.find(PairKey(movie_a, movie_b));
    return pair == pairs_.end() ? 0.0 : pair->second.Similarity();
  }

  double MovieMean(int movie) const {
    const auto it = movies_seen_.find(movie);
    return it == movies_seen_.end()
               ? kMiddleRating
               : static_cast<double>(it->second.sum) / static_cast<double>(it->second.count);
  }

  void AddSecond(absl::Span<const Rating> second) {
    // Residuals against the movie means before this second, like the rows' movie_mean.
    residuals_.clear();
    for (const Rating& r : second) residuals_.push_back(r.rating - MovieMean(r.movie));
    for (size_t i = 0; i < second.size(); ++i) {
      const Rating& r = second[i];
      Totals& movie_totals = movies_seen_[r.movie];
      ++movie_totals.count;
      movie_totals.sum += r.rating;
      UserRatings& user = users_[r.user];
      if (user.genres.empty()) user.genres.resize(num_genres_);
      const double user_mean = static_cast<double>(user.totals.sum + r.rating) /
                               static_cast<double>(user.totals.count + 1);
      const double deviation = r.rating - user_mean;
      for (const RatedMovie& earlier : user.rated) {
        if (earlier.movie == r.movie) continue;
        MoviePair& pair = pairs_[PairKey(earlier.movie, r.movie)];
        const double earlier_deviation = earlier.rating - user_mean;
        ++pair.co_raters;
        pair.product_sum += earlier_deviation * deviation;
        const bool earlier_is_low = earlier.movie < r.movie;
        pair.low_square_sum +=
            earlier_is_low ? earlier_deviation * earlier_deviation : deviation * deviation;
        pair.high_square_sum +=
            earlier_is_low ? deviation * deviation : earlier_deviation * earlier_deviation;
      }
      ++user.totals.count;
      user.totals.sum += r.rating;
      user.residual_sum += residuals_[i];
      for (int g : movies_->at(r.movie).genre_ids) {
        ++user.genres[g].count;
        user.genres[g].sum += r.rating;
      }
      user.rated.push_back({r.movie, r.rating});
    }
  }

 private:
  struct Totals {
    int64_t count = 0;
    int64_t sum = 0;  // of ratings
  };
  struct RatedMovie {
    int movie;
    int rating;
  };
  struct UserRatings {
    Totals totals;
    double residual_sum = 0;        // of (rating - the movie's earlier mean)
    std::vector<Totals> genres;     // by genre id
    std::vector<RatedMovie> rated;  // in time order
  };

  // Two movies' ratings by the users who rated both (PairKey order: low and high movie id),
  // each minus the user's mean rating at the later of the two.
  struct MoviePair {
    int32_t co_raters = 0;
    double product_sum = 0;
    double low_square_sum = 0;
    double high_square_sum = 0;

    // The shrunk adjusted cosine; 0 when either side has no spread.
    double Similarity() const {
      const double norm = std::sqrt(low_square_sum * high_square_sum);
      if (!(norm > 0)) return 0;
      return product_sum / norm * co_raters / (co_raters + kSimilarityShrinkage);
    }
  };

  static uint64_t PairKey(int a, int b) {
    const uint64_t low = static_cast<uint32_t>(std::min(a, b));
    const uint64_t high = static_cast<uint32_t>(std::max(a, b));
    return low << 32 | high;
  }
  static std::string MeanMinusMiddle(const Totals& totals) {
    if (totals.count == 0) return "";
    return FormatStatistic(static_cast<double>(totals.sum) / totals.count - kMiddleRating);
  }

  const absl::flat_hash_map<int, Movie>* const movies_;
  const size_t num_genres_;
  const size_t history_;
  absl::flat_hash_map<int, Totals> movies_seen_;
  absl::flat_hash_map<int, UserRatings> users_;
  // By PairKey, for history_co_rated_mean and item_cf_mean.
  absl::flat_hash_map<uint64_t, MoviePair> pairs_;
  std::vector<double> residuals_;  // AddSecond's scratch
};

EarlierRatings::EarlierRatings(const absl::flat_hash_map<int, Movie>* movies, size_t genres,
                               size_t history)
    : impl_(std::make_unique<Impl>(movies, genres, history)) {}
EarlierRatings::~EarlierRatings() = default;
void EarlierRatings::Describe(const Rating& r, std::string* line) const {
  impl_->Describe(r, line);
}
double EarlierRatings::Similarity(int movie_a, int movie_b) const {
  return impl_->Similarity(movie_a, movie_b);
}
double EarlierRatings::MovieMean(int movie) const { return impl_->MovieMean(movie); }
void EarlierRatings::AddSecond(absl::Span<const Rating> second) { impl_->AddSecond(second); }

// RefitModels' state; its methods do what the header says of RefitModels'.
class RefitModels::Impl {
 public:
  absl::Status Refit(absl::Span<const Rating> earlier) {
    if (earlier.empty()) return absl::OkStatus();  // nothing to fit yet: cells stay empty
    std::vector<ObservedRating> observed;
    std::vector<ItemItemRegression::Pick> picks;
    observed.reserve(earlier.size());
    picks.reserve(earlier.size());
    for (const Rating& r : earlier) {
      observed.push_back({r.user, r.movie, static_cast<double>(r.rating)});
      picks.push_back({r.user, r.movie});
    }
    absl::StatusOr<RatingFactorization> factorization =
        RatingFactorization::Fit(observed, RatingFactorization::Options());
    if (!factorization.ok()) return factorization.status();
    absl::StatusOr<ItemItemRegression> item_item =
        ItemItemRegression::Fit(picks, kItemItemRegularization);
    if (!item_item.ok()) return item_item.status();
    users_.clear();
    factorization_ = std::make_unique<RatingFactorization>(*std::move(factorization));
    item_item_ = std::make_unique<ItemItemRegression>(*std::move(item_item));
    AddSecond(earlier);
    return absl::OkStatus();
  }

  void Describe(const Rating& r, std::string* line) const {
    if (factorization_ == nullptr) {
      absl::StrAppend(line, "\t\t\t\t");
      return;
    }
    const auto user = users_.find(r.user);
    const double predicted =
        user == users_.end()
            ? RatingFactorization::UserFoldIn(factorization_.get()).Predict(r.movie)
            : user->second.fold_in.Predict(r.movie);
    absl::StrAppend(line, "\t", FormatStatistic(predicted - kMiddleRating), "\t");
    if (user == users_.end() || !factorization_->Knows(r.movie)) {
      absl::StrAppend(line, "\t\t");
      return;
    }
    const Eigen::VectorXd target = factorization_->ItemFactors(r.movie);
    const UserTaste& taste = user->second;
    const double norms = taste.rated_sum.norm() * target.norm();
    if (taste.rated > 0 && norms > 0) {
      absl::StrAppend(line, FormatStatistic(taste.rated_sum.dot(target) / norms));
    }
    absl::StrAppend(line, "\t");
    if (!taste.liked.empty()) {
      absl::StrAppend(line, FormatStatistic(taste.liked_sum.dot(target) /
                                            static_cast<double>(taste.liked.size())));
    }
    absl::StrAppend(line, "\t");
    if (!taste.liked.empty()) {
      double score = 0;
      for (int movie : taste.liked) score += item_item_->Weight(movie, r.movie);
      absl::StrAppend(line, FormatStatistic(score));
    }
  }

  void AddSecond(absl::Span<const Rating> ratings) {
    if (factorization_ == nullptr) return;
    for (const Rating& r : ratings) {
      UserTaste& taste = users_.try_emplace(r.user, factorization_.get()).first->second;
      taste.fold_in.Add(r.movie, r.rating);
      if (!factorization_->Knows(r.movie)) continue;  // both fits saw the same movies
      const Eigen::VectorXd factors = factorization_->ItemFactors(r.movie);
      taste.rated_sum += factors;
      ++taste.rated;
      if (r.rating >= kClickMinRating) {
        taste.liked_sum += factors;
        taste.liked.push_back(r.movie);
      }
    }
  }

 private:
  struct UserTaste {
    explicit UserTaste(const RatingFactorization* factorization)
        : fold_in(factorization),
          rated_sum(Eigen::VectorXd::Zero(factorization->factors())),
          liked_sum(Eigen::VectorXd::Zero(factorization->factors())) {}
    RatingFactorization::UserFoldIn fold_in;
    // Over the earlier movies both fits know: the sum of the factors of those rated, and of
    // those rated >= kClickMinRating ("liked"), which are also listed.
    Eigen::VectorXd rated_sum;
    int64_t rated = 0;
    Eigen::VectorXd liked_sum;
    std::vector<int> liked;
  };

  // Null before the first Refit.
  std::unique_ptr<RatingFactorization> factorization_;
  std::unique_ptr<ItemItemRegression> item_item_;
  absl::flat_hash_map<int, UserTaste> users_;
};

RefitModels::RefitModels() : impl_(std::make_unique<Impl>()) {}
RefitModels::~RefitModels() = default;
absl::Status RefitModels::Refit(absl::Span<const Rating> earlier) { return impl_->Refit(earlier); }
void RefitModels::Describe(const Rating& r, std::string* line) const { impl_->Describe(r, line); }
void RefitModels::AddSecond(absl::Span<const Rating> ratings) { impl_->AddSecond(ratings); }

}  // namespace granary
