// granary_movielens_convert: turns MovieLens-100K (u.data, u.user, u.item, u.genre) into the
// Granary input format (DESIGN.md "Input format") described by configs/movielens_dataset.pbtxt.
//
//   granary_movielens_convert --input_dir=../shared/data/movielens-100k --output_dir=/tmp/ml
//
// writes <output_dir>/train-<k>.tsv.gz (k = 00 .. --train_parts - 1, consecutive stretches of
// time, so that the scheduler's work queue can hand them to several workers) and
// <output_dir>/eval.tsv.gz: one line per rating, in time order (timestamp, then user id, then
// movie id), with the columns
//   click         label: 1 if rating >= 4, else 0
//   rating_class  label: rating - 1, in 0..4
//   above_mean    label (auxiliary task, "rating above the user's running mean"): 1 if the
//                 rating is above the mean of the user's strictly earlier ratings, else 0;
//                 empty (missing) for a user's first rating second, which has no earlier one
//   user_id, gender, occupation   tokens as in u.user
//   age           bucket: under18, 18-24, 25-34, 35-44, 45-49, 50-55, 56plus
//   zip3          first 3 characters of the zip code
//   movie_id      token as in u.data
//   genres        the movie's genre names joined by ',' (empty if it has none)
//   year          release year; years before 1990 (sparse in this data) as their decade
//                 ("1970s"); empty if unknown
//   movie_count   item statistics: log(1 + the number of the movie's ratings strictly earlier
//                 in time, by any user), "%.4f"; 0 for a new arrival
//   movie_mean    the mean of those earlier ratings minus 3, "%.4f"; empty if there are none
//   user_count    user statistics, over the user's ratings strictly earlier in time: log(1 + their
//                 number); 0 for the user's first rating (second)
//   user_mean     their mean minus 3; empty if there are none
//   user_bias     the mean of (rating - 3 - that rating's movie_mean, 0 if it was empty) over
//                 them: how much the user likes movies more than others did; empty if none
//   user_genre_mean  over them, the mean rating of the movies sharing a genre with the target
//                 movie (each shared genre counts once), minus the mean of all of them (the
//                 user's taste for the target's genres); empty if none shares a genre
//   movie_age     log(1 + max(0, rating year - release year)), the rating year in UTC; empty if
//                 the release year is unknown
//   history_co_rated_mean  over the ratings of the history column: the mean of (rating - the
//                 user's earlier mean), each weighted by how many users rated both that movie and
//                 the target strictly earlier (item co-occurrence); empty if no weight
//   item_cf_mean  item-based collaborative filtering over all the user's earlier ratings: the
//                 mean of (rating - the user's earlier mean) weighted by each movie's similarity
//                 to the target (normalized by the sum of |similarity|): the adjusted cosine
//                 of the two movies' ratings (each minus its rater's mean at the later of the
//                 two ratings) over the users who rated both strictly earlier, shrunk by
//                 n / (n + 5) for n such users; empty if every similarity is 0 or unknown
//   history_mean  over the ratings of the history column: their mean minus 3; empty if the
//                 history is empty
//   history_last  the history's last (most recent) rating minus 3; empty if none
//   history_liked the share of the history's ratings >= 4 minus 0.5; empty if none
//   history_recent_mean  the mean of the history's last kRecentHistory ratings minus 3; empty
//                 if none
//   Models refit at the start of each output file on every rating before its first row's
//   second (like models retrained each day on all earlier days), each row's user described by
//   all of their ratings strictly earlier than the row's; all four columns are empty in
//   train-00, which has no earlier file, and "%.4f":
//   mf_rating     the rating a biased matrix factorization (worker/tools/rating_factorization.h,
//                 32 factors) predicts, minus 3, the user folded into it from those ratings
//   mf_rated_similarity  the cosine of the target's factors and the sum of the factors of the
//                 movies the user rated (does it look like what they choose to watch); empty
//                 if the target or every one of those movies is unknown to the fit
//   mf_liked_affinity  the mean dot product of the target's factors with those of the movies
//                 the user rated >= 4; empty if none, or the target is unknown to the fit
//   ease_liked_score  the sum of EASE item-to-item weights (worker/tools/item_item_regression.h,
//                 fit on which movies each user rated) from the movies the user rated >= 4 to
//                 the target; empty if none
//   history       the user's last --history ratings strictly earlier in time (a rating in the
//                 same second as the current one is never included, nor any later one),
//                 oldest first, steps joined by ';' as
//                 "movie_id,genre,rating_vs_mean,rating_vs_movie_mean,similarity": genre is the
//                 movie's first genre in u.genre order ("none" if it has none); the others
//                 "%.4f", from ratings strictly earlier than the row's: rating_vs_mean the
//                 step's rating (1..5) minus the mean of all the user's ratings,
//                 rating_vs_movie_mean the step's rating minus the mean of its movie's ratings
//                 by anyone (3 if none), similarity the step movie's item_cf_mean similarity to
//                 the target (0 if unknown)
//   timestamp     unix seconds of the rating (IGNORED by the dataset config; for inspection)
//
// Split: a global time cut, like daily training (train on the past, evaluate on the future;
// the protocol ReChorus calls "leave by time"). The cut is the timestamp of the rating at rank
// floor((1 - eval_fraction) * n) in time order; ratings before the cut are training data,
// ratings at or after it evaluation data, so no second is split between the two and the eval
// share may exceed eval_fraction slightly. Histories and statistics of eval ratings include
// earlier eval ratings: by then they are known behaviour. Every statistics column reads only
// ratings strictly earlier in time than its row's (never one of the same second), so no
// feature carries the label or the future.
//
// Files are written under a temporary name and renamed when complete. Malformed input stops
// the conversion with an error naming the file and line.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/atomic_file.h"
#include "common/process_init.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "worker/tools/item_item_regression.h"
#include "worker/tools/movielens_input.h"
#include "worker/tools/rating_factorization.h"

DEFINE_string(input_dir, "", "Folder with u.data, u.user, u.item and u.genre (required).");
DEFINE_string(output_dir, "", "Folder for train-*.tsv.gz and eval.tsv.gz; created if missing.");
DEFINE_int32(train_parts, 8, "Files the training split is cut into, in time order (1..100).");
DEFINE_int32(history, 20, "Most recent earlier ratings in each behaviour sequence.");
DEFINE_double(eval_fraction, 0.1,
              "Share of ratings, by time, after the global cut that become eval data; [0, 1).");

namespace granary {
namespace {

// The columns of the output, in order; configs/movielens_dataset.pbtxt names the same.
constexpr const char* kColumns[] = {"click",
                                    "rating_class",
                                    "above_mean",
                                    "user_id",
                                    "gender",
                                    "age",
                                    "occupation",
                                    "zip3",
                                    "movie_id",
                                    "genres",
                                    "year",
                                    "history",
                                    "movie_count",
                                    "movie_mean",
                                    "user_count",
                                    "user_mean",
                                    "user_bias",
                                    "user_genre_mean",
                                    "movie_age",
                                    "history_co_rated_mean",
                                    "item_cf_mean",
                                    "history_mean",
                                    "history_last",
                                    "history_liked",
                                    "history_recent_mean",
                                    "mf_rating",
                                    "mf_rated_similarity",
                                    "mf_liked_affinity",
                                    "ease_liked_score",
                                    "timestamp"};
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
// movie_mean is centred on the middle of the 1..5 scale.
constexpr double kMiddleRating = 3.0;
constexpr int kClickMinRating = 4;
constexpr size_t kWriteChunkBytes = 1 << 20;

// A gzip file written under TemporaryPathOf(path) and published as `path` by Close().
class GzipWriter {
 public:
  absl::Status Open(const std::string& path) {
    path_ = path;
    file_ = gzopen(TemporaryPathOf(path).c_str(), "wb");
    if (file_ == nullptr) {
      return absl::UnavailableError(absl::StrCat(TemporaryPathOf(path), ": cannot create"));
    }
    return absl::OkStatus();
  }
  ~GzipWriter() {
    if (file_ != nullptr) gzclose(file_);
  }

  absl::Status Append(const std::string& text) {
    buffer_.append(text);
    return buffer_.size() >= kWriteChunkBytes ? Flush() : absl::OkStatus();
  }

  absl::Status Close() {
    absl::Status status = Flush();
    int result = gzclose(file_);
    file_ = nullptr;
    if (!status.ok()) return status;
    if (result != Z_OK) {
      return absl::DataLossError(absl::StrCat(TemporaryPathOf(path_), ": close failed"));
    }
    return PublishFile(TemporaryPathOf(path_), path_);
  }

 private:
  absl::Status Flush() {
    if (!buffer_.empty() &&
        gzwrite(file_, buffer_.data(), static_cast<unsigned>(buffer_.size())) <= 0) {
      int error = 0;
      return absl::DataLossError(
          absl::StrCat(TemporaryPathOf(path_), ": write failed: ", gzerror(file_, &error)));
    }
    buffer_.clear();
    return absl::OkStatus();
  }

  std::string path_;
  gzFile file_ = nullptr;
  std::string buffer_;
};

struct SplitCounts {
  uint64_t rows = 0;
  uint64_t clicks = 0;
  absl::flat_hash_set<int> users;
  absl::flat_hash_set<int> movies;

  void Add(const Rating& r) {
    ++rows;
    clicks += r.rating >= kClickMinRating;
    users.insert(r.user);
    movies.insert(r.movie);
  }
  double ClickRate() const { return rows == 0 ? 0.0 : static_cast<double>(clicks) / rows; }
};

// One of a user's ratings, as a behaviour of later ones.
struct Behaviour {
  int64_t timestamp;
  int movie;
  int rating;
  int64_t rating_sum;  // of this and every earlier behaviour of the user
};

// Formats a statistic the way every numeric column is written.
std::string FormatStatistic(double value) { return absl::StrFormat("%.4f", value); }

// Appends the history_mean .. history_recent_mean cells of a row whose history is `history`
// (oldest first), each preceded by a tab, to *line.
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

// The statistics columns of a rating (movie_count .. item_cf_mean, see the top of this
// file), computed from the ratings added so far. The caller describes every rating of one second
// before adding that second's ratings, so a row sees only strictly earlier ones.
class EarlierRatings {
 public:
  // REQUIRES: `movies` outlives this object and holds every rated movie.
  EarlierRatings(const absl::flat_hash_map<int, Movie>* movies, size_t genres, size_t history)
      : movies_(movies), num_genres_(genres), history_(history) {}

  // Appends the statistics cells of `r`, each preceded by a tab, to *line.
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

  // item_cf_mean's similarity of two movies over the users who rated both so far; 0 if none
  // did.
  double Similarity(int movie_a, int movie_b) const {
    const auto pair = pairs_.find(PairKey(movie_a, movie_b));
    return pair == pairs_.end() ? 0.0 : pair->second.Similarity();
  }

  // The mean of the movie's ratings so far, or kMiddleRating if it has none.
  double MovieMean(int movie) const {
    const auto it = movies_seen_.find(movie);
    return it == movies_seen_.end()
               ? kMiddleRating
               : static_cast<double>(it->second.sum) / static_cast<double>(it->second.count);
  }

  // Adds the ratings of one second (REQUIRES: all with the same timestamp, later than any added
  // before).
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

// The columns of models refit at the start of each output file (mf_rating ..
// ease_liked_score, see the top of this file), and what they know of each user, kept current
// one second at a time like EarlierRatings.
class RefitModels {
 public:
  // Refits on `earlier` (every rating of the seconds before the current one) and describes each
  // user again from their ratings among them. Errors: the fits'.
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

  // Appends the mf_rating, mf_rated_similarity, mf_liked_affinity and ease_liked_score cells of
  // `r`, each preceded by a tab: empty before the first Refit.
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

  // Adds ratings (of one second, or every earlier one at a refit) to what is known of their
  // users.
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

absl::Status Convert() {
  const auto start = std::chrono::steady_clock::now();
  if (FLAGS_input_dir.empty() || FLAGS_output_dir.empty()) {
    return absl::InvalidArgumentError("--input_dir and --output_dir are required");
  }
  if (!(FLAGS_eval_fraction >= 0 && FLAGS_eval_fraction < 1) || FLAGS_history < 0) {
    return absl::InvalidArgumentError("need --eval_fraction in [0, 1) and --history >= 0");
  }
  absl::StatusOr<MovielensInput> input = ReadMovielens(FLAGS_input_dir);
  if (!input.ok()) return input.status();
  const std::vector<std::string>& genre_names = input->genre_names;
  const absl::flat_hash_map<int, User>& users = input->users;
  const absl::flat_hash_map<int, Movie>& movies = input->movies;
  std::vector<Rating>& ratings = input->ratings;
  absl::Status status;

  std::sort(ratings.begin(), ratings.end(), [](const Rating& a, const Rating& b) {
    return std::tie(a.timestamp, a.user, a.movie) < std::tie(b.timestamp, b.user, b.movie);
  });
  const size_t cut_rank = static_cast<size_t>((1 - FLAGS_eval_fraction) * ratings.size());
  const int64_t cut = cut_rank < ratings.size() ? ratings[cut_rank].timestamp : INT64_MAX;

  std::error_code error;
  std::filesystem::create_directories(FLAGS_output_dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat(FLAGS_output_dir, ": ", error.message()));
  }
  if (FLAGS_train_parts < 1 || FLAGS_train_parts > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("--train_parts must be in 1..100, not ", FLAGS_train_parts));
  }
  const size_t train_rows = static_cast<size_t>(std::count_if(
      ratings.begin(), ratings.end(), [cut](const Rating& r) { return r.timestamp < cut; }));
  std::vector<GzipWriter> train_files(FLAGS_train_parts);
  GzipWriter eval_file;
  const std::string header = absl::StrCat(absl::StrJoin(kColumns, "\t"), "\n");
  for (int k = 0; k < FLAGS_train_parts && status.ok(); ++k) {
    status = train_files[k].Open(absl::StrFormat("%s/train-%02d.tsv.gz", FLAGS_output_dir, k));
    if (status.ok()) status = train_files[k].Append(header);
  }
  if (status.ok()) status = eval_file.Open(FLAGS_output_dir + "/eval.tsv.gz");
  if (status.ok()) status = eval_file.Append(header);
  if (!status.ok()) return status;
  size_t train_written = 0;

  absl::flat_hash_map<int, std::vector<Behaviour>> behaviours;  // by user, in time order
  SplitCounts train_counts;
  SplitCounts eval_counts;
  EarlierRatings earlier_ratings(&movies, genre_names.size(), FLAGS_history);
  RefitModels refit_models;
  int current_file = 0;  // train part k is file k, eval file FLAGS_train_parts
  std::string line;
  std::string history;
  for (size_t second_start = 0, second_end = 0; second_start < ratings.size();
       second_start = second_end) {
    while (second_end < ratings.size() &&
           ratings[second_end].timestamp == ratings[second_start].timestamp) {
      ++second_end;
    }
    for (size_t row = second_start; row < second_end; ++row) {
      const Rating& r = ratings[row];
      const bool is_eval = r.timestamp >= cut;
      const int file = is_eval ? FLAGS_train_parts
                               : static_cast<int>(train_written * FLAGS_train_parts / train_rows);
      if (file != current_file) {
        // A new day: refit on every earlier second's ratings.
        current_file = file;
        status = refit_models.Refit(absl::MakeConstSpan(ratings.data(), second_start));
        if (!status.ok()) return status;
      }
      std::vector<Behaviour>& past = behaviours[r.user];
      // Behaviours in the same second as r (already appended, ratings being in time order) are
      // not earlier than r.
      size_t earlier = past.size();
      while (earlier > 0 && past[earlier - 1].timestamp >= r.timestamp) --earlier;
      const size_t history_start = earlier - std::min<size_t>(earlier, FLAGS_history);
      const double user_mean =
          earlier == 0 ? 0.0 : static_cast<double>(past[earlier - 1].rating_sum) / earlier;
      history.clear();
      for (size_t i = history_start; i < earlier; ++i) {
        if (!history.empty()) history.push_back(';');
        absl::StrAppend(&history, past[i].movie, ",", movies.at(past[i].movie).first_genre, ",",
                        FormatStatistic(past[i].rating - user_mean), ",",
                        FormatStatistic(past[i].rating - earlier_ratings.MovieMean(past[i].movie)),
                        ",", FormatStatistic(earlier_ratings.Similarity(past[i].movie, r.movie)));
      }
      std::string above_mean;
      if (earlier > 0) {
        // rating > sum / earlier, in integers.
        above_mean =
            r.rating * static_cast<int64_t>(earlier) > past[earlier - 1].rating_sum ? "1" : "0";
      }
      const User& user = users.at(r.user);
      const Movie& movie = movies.at(r.movie);
      line = absl::StrCat(r.rating >= kClickMinRating ? "1" : "0", "\t", r.rating - 1, "\t",
                          above_mean, "\t", r.user, "\t", user.gender, "\t", user.age, "\t",
                          user.occupation, "\t", user.zip3, "\t", r.movie, "\t", movie.genres, "\t",
                          movie.year, "\t", history);
      earlier_ratings.Describe(r, &line);
      AppendHistorySummary(
          absl::MakeConstSpan(past.data() + history_start, earlier - history_start), &line);
      refit_models.Describe(r, &line);
      absl::StrAppend(&line, "\t", r.timestamp, "\n");
      status = is_eval ? eval_file.Append(line) : train_files[file].Append(line);
      if (!is_eval) ++train_written;
      if (!status.ok()) return status;
      (is_eval ? eval_counts : train_counts).Add(r);
      past.push_back(
          {r.timestamp, r.movie, r.rating, (past.empty() ? 0 : past.back().rating_sum) + r.rating});
    }
    const absl::Span<const Rating> second =
        absl::MakeConstSpan(ratings.data() + second_start, second_end - second_start);
    earlier_ratings.AddSecond(second);
    refit_models.AddSecond(second);
  }
  for (GzipWriter& train_file : train_files) {
    if (status.ok()) status = train_file.Close();
  }
  if (status.ok()) status = eval_file.Close();
  if (!status.ok()) return status;

  uint64_t cold_movies = 0;
  for (int movie : eval_counts.movies) cold_movies += !train_counts.movies.contains(movie);
  uint64_t cold_users = 0;
  for (int user : eval_counts.users) cold_users += !train_counts.users.contains(user);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  absl::PrintF("read %d ratings, %d users, %d movies, %d genres from %s\n", ratings.size(),
               users.size(), movies.size(), genre_names.size(), FLAGS_input_dir);
  absl::PrintF("time cut at %d (eval = ratings at or after it; eval share %.4f)\n", cut,
               static_cast<double>(eval_counts.rows) / ratings.size());
  auto print_split = [](const char* name, const SplitCounts& counts) {
    absl::PrintF("%-5s rows %d, click positive rate %.4f, users %d, movies %d\n", name, counts.rows,
                 counts.ClickRate(), counts.users.size(), counts.movies.size());
  };
  print_split("train", train_counts);
  print_split("eval", eval_counts);
  absl::PrintF("eval cold start: %d movies and %d users never seen in train\n", cold_movies,
               cold_users);
  absl::PrintF("wrote %s/train-{00..%02d}.tsv.gz and eval.tsv.gz in %.2f s\n", FLAGS_output_dir,
               FLAGS_train_parts - 1, seconds);
  return absl::OkStatus();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  granary::InitProcess(
      "granary_movielens_convert --input_dir=DIR --output_dir=DIR [--history=20] "
      "[--eval_fraction=0.1] [--train_parts=8]",
      &argc, &argv);
  absl::Status status = granary::Convert();
  if (!status.ok()) {
    LOG(ERROR) << status.message();
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
