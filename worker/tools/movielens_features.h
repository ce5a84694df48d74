// The feature columns granary_movielens_convert computes from ratings strictly earlier than a
// row's (statistics, history summaries, refit models); worker/tools/movielens_convert.cc
// defines each column at its top. Cells are appended to a row's text, each preceded by a tab,
// numbers as FormatStatistic writes them.
//
// Not thread-safe: one thread uses an EarlierRatings or RefitModels at a time.
#ifndef GRANARY_WORKER_TOOLS_MOVIELENS_FEATURES_H_
#define GRANARY_WORKER_TOOLS_MOVIELENS_FEATURES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "worker/tools/movielens_input.h"

namespace granary {

// A rating >= kClickMinRating is a click (the click label) and a movie the user liked.
inline constexpr int kClickMinRating = 4;

// Formats a statistic the way every numeric column is written ("%.4f").
std::string FormatStatistic(double value);

// One of a user's ratings, as a behaviour of later ones.
struct Behaviour {
  int64_t timestamp;
  int movie;
  int rating;
  int64_t rating_sum;  // of this and every earlier behaviour of the user
};

// Appends the history_mean .. history_recent_mean cells of a row whose history is `history`
// (oldest first), each preceded by a tab, to *line.
void AppendHistorySummary(absl::Span<const Behaviour> history, std::string* line);

// The statistics columns of a rating (movie_count .. item_cf_mean), computed from the ratings
// added so far. The caller describes every rating of one second before adding that second's
// ratings, so a row sees only strictly earlier ones.
class EarlierRatings {
 public:
  // REQUIRES: `movies` outlives this object and holds every rated movie; `genres` is the
  // number of genres; `history` the length of the history column (history_co_rated_mean reads
  // the user's last `history` ratings).
  EarlierRatings(const absl::flat_hash_map<int, Movie>* movies, size_t genres, size_t history);
  ~EarlierRatings();
  EarlierRatings(const EarlierRatings&) = delete;
  EarlierRatings& operator=(const EarlierRatings&) = delete;

  // Appends the statistics cells of `r`, each preceded by a tab, to *line.
  void Describe(const Rating& r, std::string* line) const;

  // item_cf_mean's similarity of two movies over the users who rated both so far; 0 if none
  // did.
  double Similarity(int movie_a, int movie_b) const;

  // The mean of the movie's ratings so far, or the middle rating 3 if it has none.
  double MovieMean(int movie) const;

  // Adds the ratings of one second (REQUIRES: all with the same timestamp, later than any added
  // before).
  void AddSecond(absl::Span<const Rating> second);

 private:
  class Impl;
  const std::unique_ptr<Impl> impl_;
};

// The columns of models refit at the start of each output file (mf_rating ..
// ease_liked_score), and what they know of each user, kept current one second at a time like
// EarlierRatings.
class RefitModels {
 public:
  RefitModels();
  ~RefitModels();
  RefitModels(const RefitModels&) = delete;
  RefitModels& operator=(const RefitModels&) = delete;

  // Refits on `earlier` (every rating of the seconds before the current one) and describes each
  // user again from their ratings among them. OK without a fit for no ratings; else the fits'
  // errors.
  absl::Status Refit(absl::Span<const Rating> earlier);

  // Appends the mf_rating, mf_rated_similarity, mf_liked_affinity and ease_liked_score cells of
  // `r`, each preceded by a tab: empty before the first Refit.
  void Describe(const Rating& r, std::string* line) const;

  // Adds ratings (of one second, or every earlier one at a refit) to what is known of their
  // users.
  void AddSecond(absl::Span<const Rating> ratings);

 private:
  class Impl;
  const std::unique_ptr<Impl> impl_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_MOVIELENS_FEATURES_H_
