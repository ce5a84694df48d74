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
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "common/atomic_file.h"
#include "common/process_init.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "worker/tools/movielens_features.h"
#include "worker/tools/movielens_input.h"

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
// GzipWriter buffers this many bytes of rows before handing them to zlib.
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
