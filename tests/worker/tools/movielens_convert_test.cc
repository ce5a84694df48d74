// granary_movielens_convert (worker/tools/movielens_convert.cc), run as a process on a tiny
// synthetic MovieLens folder (and on the real MovieLens-100K when it is present); its output is
// read back through the Reader with the shipped dataset config.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/reader_input.h"
#include "tests/testing/sanitizer.h"
#include "worker/line_source.h"
#include "worker/reader.h"
#include "worker/tools/item_item_regression.h"
#include "worker/tools/rating_factorization.h"

namespace granary {
namespace {

using ::testing::HasSubstr;

// A gzip or plain file's lines.
std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  absl::Status status = ForEachLine(path, [&lines](std::string_view line, uint64_t) {
    lines.emplace_back(line);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return lines;
}

// Runs the converter; returns its exit code and log.
int RunConverter(const std::vector<std::string>& flags, std::string* log) {
  std::vector<std::string> argv = {std::string(GRANARY_BINARY_DIR) + "/granary_movielens_convert"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  std::string log_path = TestTempDir() + "/movielens_convert.log";
  std::filesystem::remove(log_path);
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, log_path);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return -1;
  std::optional<int> code = child->WaitForExit(absl::Seconds(120));
  *log = child->ReadLog();
  return code.value_or(-1);
}

struct ConvertedRow {
  std::map<std::string, std::string> cells;
  std::string Get(const std::string& column) const { return cells.at(column); }
};

std::vector<ConvertedRow> ReadConverted(const std::string& path) {
  std::vector<std::string> lines = ReadLines(path);
  std::vector<std::string> header = absl::StrSplit(lines.at(0), '\t');
  std::vector<ConvertedRow> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cells = absl::StrSplit(lines[i], '\t');
    EXPECT_EQ(cells.size(), header.size()) << lines[i];
    ConvertedRow& row = rows.emplace_back();
    for (size_t c = 0; c < header.size() && c < cells.size(); ++c) row.cells[header[c]] = cells[c];
  }
  return rows;
}

class MovielensConvertTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(TestTempDir()); }

  // A tiny MovieLens-format folder: 3 genres, 3 users, 4 movies, 12 ratings, with
  // `time_offset` seconds added to every timestamp of ratings_.
  std::string WriteSyntheticMovielens(int64_t time_offset = 0) {
    std::string dir = TestTempDir() + "/synthetic_movielens";
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/u.genre") << "unknown|0\nAction|1\nDrama|2\n\n";
    std::ofstream(dir + "/u.user") << "1|24|M|technician|85711\n"
                                      "2|53|F|other|94043\n"
                                      "3|17|M|student|T8H1N\n";
    std::ofstream(dir + "/u.item") << "10|A (1995)|01-Jan-1995||url|0|1|0\n"
                                      "11|B (1977)|01-Jan-1977||url|0|1|1\n"
                                      "12|C|||url|0|0|0\n"
                                      "13|D (1998)|01-Jan-1998||url|0|0|1\n";
    // user, movie, rating, timestamp; in no particular order, as in u.data. User 1 rates 12
    // and 13 in the same second.
    ratings_ = {{1, 10, 5, 100},  {1, 11, 3, 200}, {1, 12, 4, 300}, {1, 13, 1, 300},
                {1, 11, 2, 1000}, {2, 10, 4, 150}, {2, 13, 5, 250}, {2, 12, 1, 900},
                {3, 11, 4, 120},  {3, 12, 2, 950}, {3, 13, 5, 960}, {2, 11, 3, 970}};
    std::ofstream data(dir + "/u.data");
    for (const Rating& r : ratings_) {
      data << r.user << "\t" << r.movie << "\t" << r.rating << "\t" << r.timestamp + time_offset
           << "\n";
    }
    return dir;
  }

  // The row of `user` rating `movie` at unix second `timestamp` among `rows`; a test failure
  // and rows[0] if there is none. REQUIRES: !rows.empty().
  static const ConvertedRow& RowOf(const std::vector<ConvertedRow>& rows, int user, int movie,
                                   int64_t timestamp) {
    for (const ConvertedRow& row : rows) {
      if (row.Get("user_id") == absl::StrCat(user) && row.Get("movie_id") == absl::StrCat(movie) &&
          row.Get("timestamp") == absl::StrCat(timestamp)) {
        return row;
      }
    }
    ADD_FAILURE() << "no row for user " << user << " movie " << movie << " at " << timestamp;
    return rows[0];
  }

  struct Rating {
    int user, movie, rating;
    int64_t timestamp;
  };
  std::vector<Rating> ratings_;
};

TEST_F(MovielensConvertTest, WritesTimeSplitLabelsAndStrictlyEarlierHistories) {
  std::string input = WriteSyntheticMovielens();
  std::string output = TestTempDir() + "/synthetic_movielens_out";
  std::filesystem::remove_all(output);
  std::string log;
  ASSERT_EQ(RunConverter({"--input_dir=" + input, "--output_dir=" + output, "--history=2",
                          "--eval_fraction=0.25", "--train_parts=2"},
                         &log),
            0)
      << log;
  // The training split comes in 2 parts, consecutive in time: rows 0..4 and 5..8 of 9.
  std::vector<ConvertedRow> train = ReadConverted(output + "/train-00.tsv.gz");
  ASSERT_EQ(train.size(), 5u);
  for (ConvertedRow& row : ReadConverted(output + "/train-01.tsv.gz")) {
    EXPECT_GE(row.Get("timestamp"), train.back().Get("timestamp"));
    train.push_back(std::move(row));
  }
  std::vector<ConvertedRow> eval = ReadConverted(output + "/eval.tsv.gz");
  // 12 ratings; the cut is the timestamp at rank floor(0.75 * 12) = 9 in time order: 960.
  ASSERT_EQ(train.size(), 9u) << log;
  ASSERT_EQ(eval.size(), 3u);
  for (const ConvertedRow& row : train) EXPECT_LT(std::stoll(row.Get("timestamp")), 960);
  for (const ConvertedRow& row : eval) EXPECT_GE(std::stoll(row.Get("timestamp")), 960);
  EXPECT_THAT(log, HasSubstr("train rows 9"));
  EXPECT_THAT(log, HasSubstr("eval  rows 3"));

  std::vector<ConvertedRow> all = train;
  all.insert(all.end(), eval.begin(), eval.end());
  int64_t previous_time = 0;
  for (const ConvertedRow& row : all) {
    const int user = std::stoi(row.Get("user_id"));
    const int movie = std::stoi(row.Get("movie_id"));
    const int64_t time = std::stoll(row.Get("timestamp"));
    EXPECT_GE(time, previous_time) << "rows are in time order";
    previous_time = time;
    const Rating* rating = nullptr;
    std::vector<const Rating*> earlier;  // the user's ratings strictly before, in time order
    for (const Rating& r : ratings_) {
      if (r.user == user && r.movie == movie && r.timestamp == time) rating = &r;
    }
    ASSERT_NE(rating, nullptr);
    for (const Rating& r : ratings_) {
      if (r.user == user && r.timestamp < time) earlier.push_back(&r);
    }
    std::sort(earlier.begin(), earlier.end(),
              [](const Rating* a, const Rating* b) { return a->timestamp < b->timestamp; });
    // Labels.
    EXPECT_EQ(row.Get("click"), rating->rating >= 4 ? "1" : "0");
    EXPECT_EQ(row.Get("rating_class"), absl::StrCat(rating->rating - 1));
    if (earlier.empty()) {
      EXPECT_EQ(row.Get("above_mean"), "");
    } else {
      double mean = 0;
      for (const Rating* r : earlier) mean += r->rating;
      mean /= earlier.size();
      EXPECT_EQ(row.Get("above_mean"), rating->rating > mean ? "1" : "0");
    }
    // Item statistics: the movie's ratings strictly earlier in time, by anyone.
    int movie_earlier = 0;
    double movie_sum = 0;
    for (const Rating& r : ratings_) {
      if (r.movie == movie && r.timestamp < time) {
        ++movie_earlier;
        movie_sum += r.rating;
      }
    }
    EXPECT_NEAR(std::stod(row.Get("movie_count")), std::log1p(movie_earlier), 1e-4);
    EXPECT_EQ(row.Get("movie_mean").empty(), movie_earlier == 0);
    if (movie_earlier > 0) {
      EXPECT_NEAR(std::stod(row.Get("movie_mean")), movie_sum / movie_earlier - 3, 1e-4);
    }
    // History: the last 2 strictly earlier ratings, oldest first, as movie,genre, the rating
    // minus the mean of all the user's earlier ones, minus the mean of the movie's earlier ones
    // by anyone (3 if none), and the similarity to the target (checked below).
    double earlier_mean = 0;
    for (const Rating* r : earlier) earlier_mean += r->rating;
    if (!earlier.empty()) earlier_mean /= earlier.size();
    std::vector<std::string> expected;
    for (size_t i = earlier.size() > 2 ? earlier.size() - 2 : 0; i < earlier.size(); ++i) {
      const Rating* r = earlier[i];
      const char* genre = r->movie == 12 ? "none" : r->movie == 13 ? "Drama" : "Action";
      int step_movie_count = 0;
      double step_movie_sum = 0;
      for (const Rating& other : ratings_) {
        if (other.movie == r->movie && other.timestamp < time) {
          ++step_movie_count;
          step_movie_sum += other.rating;
        }
      }
      const double step_movie_mean =
          step_movie_count == 0 ? 3.0 : step_movie_sum / step_movie_count;
      expected.push_back(absl::StrCat(r->movie, ",", genre, ",",
                                      absl::StrFormat("%.4f", r->rating - earlier_mean), ",",
                                      absl::StrFormat("%.4f", r->rating - step_movie_mean)));
    }
    std::vector<std::string> steps_without_similarity;
    for (absl::string_view step : absl::StrSplit(row.Get("history"), ';', absl::SkipEmpty())) {
      steps_without_similarity.emplace_back(step.substr(0, step.rfind(',')));
    }
    EXPECT_EQ(absl::StrJoin(steps_without_similarity, ";"), absl::StrJoin(expected, ";"))
        << "user " << user << " movie " << movie << " at " << time;
  }

  // Features of one row: user 3 (age 17, Canadian zip) rating movie 11 (1977, two genres).
  const ConvertedRow& first_of_user3 = train[1];
  ASSERT_EQ(first_of_user3.Get("user_id"), "3");
  EXPECT_EQ(first_of_user3.Get("age"), "under18");
  EXPECT_EQ(first_of_user3.Get("zip3"), "T8H");
  EXPECT_EQ(first_of_user3.Get("genres"), "Action,Drama");
  EXPECT_EQ(first_of_user3.Get("year"), "1970s");
  // Same-second ratings (user 1, movies 12 and 13 at 300) never see each other.
  for (const ConvertedRow& row : train) {
    if (row.Get("user_id") == "1" && row.Get("timestamp") == "300") {
      // 5 and 3 against the user's mean 4 and the movies' means 4.5 and 3.5. Only movies 10
      // and 13 had a common rater before (user 2): their similarity is item_cf_mean's -1 / 6
      // (see StatisticsColumnsReadOnlyStrictlyEarlierRatings).
      EXPECT_EQ(row.Get("history"),
                row.Get("movie_id") == "13"
                    ? "10,Action,1.0000,0.5000,-0.1667;11,Action,-1.0000,-0.5000,0.0000"
                    : "10,Action,1.0000,0.5000,0.0000;11,Action,-1.0000,-0.5000,0.0000");
    }
  }

  // The output matches the shipped dataset config.
  absl::StatusOr<proto::DatasetConfig> config =
      LoadDatasetConfig(std::string(GRANARY_SOURCE_DIR) + "/configs/movielens_dataset.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  std::unique_ptr<Reader> reader = OpenReader(
      {output + "/train-00.tsv.gz", output + "/train-01.tsv.gz", output + "/eval.tsv.gz"}, *config,
      100);
  std::vector<Batch> batches = ReadAll(reader.get());
  ASSERT_TRUE(reader->status().ok()) << reader->status();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].size, 12);
  EXPECT_EQ(reader->stats().bad_lines, 0u);
}

TEST_F(MovielensConvertTest, StatisticsColumnsReadOnlyStrictlyEarlierRatings) {
  // Ratings in 1998 (the offset is 1998-01-01 00:00:00 UTC), so that movie ages are positive.
  constexpr int64_t kJanuary1998 = 883612800;
  std::string input = WriteSyntheticMovielens(kJanuary1998);
  std::string output = TestTempDir() + "/synthetic_movielens_statistics";
  std::filesystem::remove_all(output);
  std::string log;
  ASSERT_EQ(RunConverter({"--input_dir=" + input, "--output_dir=" + output, "--history=2",
                          "--eval_fraction=0", "--train_parts=1"},
                         &log),
            0)
      << log;
  std::vector<ConvertedRow> rows = ReadConverted(output + "/train-00.tsv.gz");
  ASSERT_EQ(rows.size(), 12u);
  auto row_of = [&](int user, int movie, int64_t time) -> const ConvertedRow& {
    return RowOf(rows, user, movie, time + kJanuary1998);
  };
  const std::vector<std::string> kStatistics = {
      "movie_count", "movie_mean",      "user_count", "user_mean",
      "user_bias",   "user_genre_mean", "movie_age",  "history_co_rated_mean",
      "item_cf_mean"};
  auto statistics = [&](const ConvertedRow& row) {
    std::vector<std::string> cells;
    for (const std::string& column : kStatistics) cells.push_back(row.Get(column));
    return cells;
  };
  using Cells = std::vector<std::string>;
  // The first rating of all (user 1, movie 10 of 1995): nothing earlier, by the user or anyone.
  EXPECT_EQ(statistics(row_of(1, 10, 100)),
            (Cells{"0.0000", "", "0.0000", "", "", "", "1.3863", "", ""}));  // log(1 + 3 years)
  // User 1 rates movies 12 and 13 in second 300; neither sees the other. Movie 13 (Drama, 1998;
  // rated 5 by user 2 at 250): the user's earlier 5 (movie 10) and 3 (movie 11, whose earlier
  // mean was 4) give user_mean 4 - 3, user_bias ((5 - 3) + (3 - 4)) / 2; the only Drama rating
  // is the 3 of movie 11: 3 - 4. Of the history (movies 10 and 11), only 10 was co-rated with
  // 13 earlier (user 2), so the co-rated mean is 5 - 4.
  // User 2 rated 10 and 13 with 4 and 5 (mean 4.5 at the later): deviations -0.5 and 0.5 make
  // a cosine of -1, shrunk by 1 / (1 + 5); the only similarity, it turns the user's 5 - 4 into
  // item_cf_mean -1.
  EXPECT_EQ(statistics(row_of(1, 13, 300)), (Cells{"0.6931", "2.0000", "1.0986", "1.0000", "0.5000",
                                                   "-1.0000", "0.0000", "1.0000", "-1.0000"}));
  // Movie 12 has no genre, no release year and no earlier rater: those columns are empty.
  EXPECT_EQ(statistics(row_of(1, 12, 300)),
            (Cells{"0.0000", "", "1.0986", "1.0000", "0.5000", "", "", "", ""}));
  // User 1 rates movie 11 (Action and Drama, 1977) again at 1000, after 4 ratings: 5, 3, 4, 1
  // (mean 3.25) with residuals against their movies' earlier means 2, -1, 1, -4. Action: 5, 3;
  // Drama: 3, 1 (movie 11 counts once per genre): 12 / 4 - 3.25. History: movies 12 (4) and 13
  // (1), each co-rated with 11 by 3 users before: (3 * 0.75 + 3 * -2.25) / 6. item_cf_mean is
  // what a brute-force computation of its definition gives.
  EXPECT_EQ(statistics(row_of(1, 11, 1000)),
            (Cells{"1.3863", "0.3333", "1.6094", "0.2500", "-0.5000", "-0.2500", "3.0910",
                   "-0.7500", "-1.8021"}));
  EXPECT_EQ(row_of(2, 11, 970).Get("item_cf_mean"), "1.2649");
  // Every row: the user's count and mean over strictly earlier ratings.
  for (const ConvertedRow& row : rows) {
    const int user = std::stoi(row.Get("user_id"));
    const int64_t time = std::stoll(row.Get("timestamp")) - kJanuary1998;
    int count = 0;
    double sum = 0;
    for (const Rating& r : ratings_) {
      if (r.user == user && r.timestamp < time) {
        ++count;
        sum += r.rating;
      }
    }
    EXPECT_NEAR(std::stod(row.Get("user_count")), std::log1p(count), 1e-4);
    EXPECT_EQ(row.Get("user_mean").empty(), count == 0);
    EXPECT_EQ(row.Get("user_bias").empty(), count == 0);
    if (count > 0) {
      EXPECT_NEAR(std::stod(row.Get("user_mean")), sum / count - 3, 1e-4);
    }
  }
}

TEST_F(MovielensConvertTest, HistorySummariesReadTheHistoryColumnsRatings) {
  std::string input = WriteSyntheticMovielens();
  std::string output = TestTempDir() + "/synthetic_movielens_history";
  std::filesystem::remove_all(output);
  std::string log;
  // A history of 20 holds every earlier rating here; the recent mean reads the last 5 of them.
  ASSERT_EQ(RunConverter({"--input_dir=" + input, "--output_dir=" + output, "--history=20",
                          "--eval_fraction=0", "--train_parts=1"},
                         &log),
            0)
      << log;
  std::vector<ConvertedRow> rows = ReadConverted(output + "/train-00.tsv.gz");
  ASSERT_EQ(rows.size(), 12u);
  auto summaries = [](const ConvertedRow& row) {
    return std::vector<std::string>{row.Get("history_mean"), row.Get("history_last"),
                                    row.Get("history_liked"), row.Get("history_recent_mean")};
  };
  using Cells = std::vector<std::string>;
  auto row_of = [&](int user, int movie, int64_t time) -> const ConvertedRow& {
    return RowOf(rows, user, movie, time);
  };
  // A user's first rating has no history: every summary is empty.
  EXPECT_EQ(summaries(row_of(3, 11, 120)), (Cells{"", "", "", ""}));
  // User 1 at 300 (movies 12 and 13 in one second): the history is 5, 3.
  EXPECT_EQ(summaries(row_of(1, 13, 300)), (Cells{"1.0000", "0.0000", "0.0000", "1.0000"}));
  EXPECT_EQ(summaries(row_of(1, 12, 300)), summaries(row_of(1, 13, 300)));
  // User 1 at 1000: 5, 3, then 4 and 1 of one second (so which is last is not defined), two of
  // four liked; the synthetic users have at most 4 earlier ratings, all within the last 5.
  const Cells later = summaries(row_of(1, 11, 1000));
  EXPECT_EQ(later[0], "0.2500");
  EXPECT_THAT(later[1], ::testing::AnyOf("1.0000", "-2.0000"));
  EXPECT_EQ(later[2], "0.0000");
  EXPECT_EQ(later[3], "0.2500");
}

TEST_F(MovielensConvertTest, FactorizationColumnsFitEarlierFilesAndFoldInStrictlyEarlierRatings) {
  std::string input = WriteSyntheticMovielens();
  std::string output = TestTempDir() + "/synthetic_movielens_mf";
  std::filesystem::remove_all(output);
  std::string log;
  ASSERT_EQ(RunConverter({"--input_dir=" + input, "--output_dir=" + output, "--history=2",
                          "--eval_fraction=0.25", "--train_parts=3"},
                         &log),
            0)
      << log;
  // 9 training rows in 3 files of 3, then 3 eval rows (cut at 960, as above).
  std::vector<std::vector<ConvertedRow>> files;
  for (int k = 0; k < 3; ++k) {
    files.push_back(ReadConverted(absl::StrFormat("%s/train-%02d.tsv.gz", output, k)));
    ASSERT_EQ(files.back().size(), 3u);
  }
  files.push_back(ReadConverted(output + "/eval.tsv.gz"));
  ASSERT_EQ(files.back().size(), 3u);
  // The first file has no earlier day to fit on.
  for (const ConvertedRow& row : files[0]) {
    EXPECT_EQ(row.Get("mf_rating"), "");
    EXPECT_EQ(row.Get("mf_rated_similarity"), "");
    EXPECT_EQ(row.Get("mf_liked_affinity"), "");
    EXPECT_EQ(row.Get("ease_liked_score"), "");
  }
  int checked = 0, checked_taste = 0;
  // Each later file: the factorization of every rating before its first row's second, with
  // the default options, and the row's user folded in from their ratings strictly before it.
  for (size_t k = 1; k < files.size(); ++k) {
    const int64_t file_start = std::stoll(files[k][0].Get("timestamp"));
    // In the converter's order (time, then user, then movie), which decides the fit's start.
    std::vector<Rating> in_order = ratings_;
    std::sort(in_order.begin(), in_order.end(), [](const Rating& a, const Rating& b) {
      return std::tie(a.timestamp, a.user, a.movie) < std::tie(b.timestamp, b.user, b.movie);
    });
    std::vector<ObservedRating> before_file;
    for (const Rating& r : in_order) {
      if (r.timestamp < file_start) {
        before_file.push_back({r.user, r.movie, static_cast<double>(r.rating)});
      }
    }
    absl::StatusOr<RatingFactorization> fit =
        RatingFactorization::Fit(before_file, RatingFactorization::Options());
    ASSERT_TRUE(fit.ok()) << fit.status();
    std::vector<ItemItemRegression::Pick> picks;
    for (const ObservedRating& r : before_file) picks.push_back({r.user, r.item});
    absl::StatusOr<ItemItemRegression> item_item = ItemItemRegression::Fit(picks, 100);
    ASSERT_TRUE(item_item.ok()) << item_item.status();
    for (const ConvertedRow& row : files[k]) {
      const int user = std::stoi(row.Get("user_id"));
      const int64_t time = std::stoll(row.Get("timestamp"));
      const int movie = std::stoi(row.Get("movie_id"));
      const std::string where = absl::StrCat("file ", k, " user ", user, " time ", time);
      RatingFactorization::UserFoldIn fold_in(&*fit);
      Eigen::VectorXd rated_sum = Eigen::VectorXd::Zero(fit->factors());
      Eigen::VectorXd liked_sum = Eigen::VectorXd::Zero(fit->factors());
      int rated = 0, liked = 0;
      double ease_score = 0;
      for (const Rating& r : ratings_) {
        if (r.user != user || r.timestamp >= time) continue;
        fold_in.Add(r.movie, r.rating);
        if (!fit->Knows(r.movie)) continue;
        rated_sum += fit->ItemFactors(r.movie);
        ++rated;
        if (r.rating >= 4) {
          liked_sum += fit->ItemFactors(r.movie);
          ++liked;
          ease_score += item_item->Weight(r.movie, movie);
        }
      }
      ASSERT_NE(row.Get("mf_rating"), "") << where;
      EXPECT_NEAR(std::stod(row.Get("mf_rating")), fold_in.Predict(movie) - 3, 1e-3) << where;
      // The taste columns need the target's factors and a known earlier movie (liked, for
      // mf_liked_affinity).
      const Eigen::VectorXd target = fit->ItemFactors(movie);
      if (fit->Knows(movie) && rated > 0) {
        ASSERT_NE(row.Get("mf_rated_similarity"), "") << where;
        EXPECT_NEAR(std::stod(row.Get("mf_rated_similarity")),
                    rated_sum.dot(target) / (rated_sum.norm() * target.norm()), 1e-3)
            << where;
      } else {
        EXPECT_EQ(row.Get("mf_rated_similarity"), "") << where;
      }
      if (fit->Knows(movie) && liked > 0) {
        ASSERT_NE(row.Get("mf_liked_affinity"), "") << where;
        EXPECT_NEAR(std::stod(row.Get("mf_liked_affinity")), liked_sum.dot(target) / liked, 1e-3)
            << where;
      } else {
        EXPECT_EQ(row.Get("mf_liked_affinity"), "") << where;
      }
      // EASE's weights from the liked movies (fit on the same earlier ratings) to the target.
      if (fit->Knows(movie) && liked > 0) {
        ASSERT_NE(row.Get("ease_liked_score"), "") << where;
        EXPECT_NEAR(std::stod(row.Get("ease_liked_score")), ease_score, 1e-3) << where;
      } else {
        EXPECT_EQ(row.Get("ease_liked_score"), "") << where;
      }
      ++checked;
      checked_taste += row.Get("mf_liked_affinity").empty() ? 0 : 1;
    }
  }
  EXPECT_EQ(checked, 9);  // train-01, train-02 and eval
  EXPECT_GT(checked_taste, 0);
}

TEST_F(MovielensConvertTest, MalformedInputNamesFileAndLine) {
  std::string input = WriteSyntheticMovielens();
  std::ofstream(input + "/u.data", std::ios::app) << "1\t10\t7\t5000\n";
  std::string log;
  EXPECT_NE(
      RunConverter({"--input_dir=" + input, "--output_dir=" + TestTempDir() + "/bad_out"}, &log),
      0);
  EXPECT_THAT(log, HasSubstr(input + "/u.data:13: rating must be in 1..5"));
}

// Under a sanitizer the converter's matrix factorization (Eigen's GEMM, every load checked)
// runs about 18 times slower, minutes for all of MovieLens-100K: there it converts the first
// kSanitizerRatings ratings of u.data (in no particular order) with the real user, item and
// genre files, into one training file, which refits the factorization once instead of 8 times
// (8 s of CPU under ASan).
constexpr int kSanitizerRatings = 10000;

// Writes the real files of `movielens` and the first `ratings` lines of its u.data into `dir`;
// returns how many of those are clicks (ratings of 4 or 5).
uint64_t WriteMovielensPrefix(const std::string& movielens, int ratings, const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const char* name : {"u.user", "u.item", "u.genre"}) {
    std::filesystem::copy_file(movielens + "/" + name, dir + "/" + name);
  }
  std::ifstream in(movielens + "/u.data");
  std::ofstream out(dir + "/u.data");
  uint64_t clicks = 0;
  std::string line;
  for (int i = 0; i < ratings && std::getline(in, line); ++i) {
    out << line << "\n";
    const std::vector<std::string> fields = absl::StrSplit(line, '\t');  // user movie rating time
    clicks += fields.size() > 2 && std::stoi(fields[2]) >= 4;
  }
  return clicks;
}

TEST_F(MovielensConvertTest, RealMovielensConvertsAndReads) {
  const std::string movielens = std::string(GRANARY_SOURCE_DIR) + "/../shared/data/movielens-100k";
  if (!std::filesystem::exists(movielens + "/u.data")) {
    GTEST_SKIP() << "MovieLens-100K not found at " << movielens << "; nothing to check";
  }
  std::string input = movielens;
  // 100,000 ratings, 55,375 of 4 or 5 (README).
  uint64_t expected_samples = 100000;
  uint64_t expected_clicks = 55375;
  int train_parts = 8;
  if (kUnderSanitizer) {
    input = TestTempDir() + "/movielens_prefix";
    expected_clicks = WriteMovielensPrefix(movielens, kSanitizerRatings, input);
    expected_samples = kSanitizerRatings;
    train_parts = 1;
  }
  std::string output = TestTempDir() + "/movielens_out";
  std::string log;
  ASSERT_EQ(RunConverter({"--input_dir=" + input, "--output_dir=" + output,
                          absl::StrCat("--train_parts=", train_parts)},
                         &log),
            0)
      << log;
  absl::StatusOr<proto::DatasetConfig> config =
      LoadDatasetConfig(std::string(GRANARY_SOURCE_DIR) + "/configs/movielens_dataset.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<std::string> files = {output + "/eval.tsv.gz"};
  for (int k = 0; k < train_parts; ++k)
    files.push_back(absl::StrFormat("%s/train-%02d.tsv.gz", output, k));
  std::unique_ptr<Reader> reader = OpenReader(files, *config, 1024, 4);
  Batch batch;
  uint64_t clicks = 0;
  uint64_t samples = 0;
  while (reader->Next(&batch)) {
    const FloatColumn& click = batch.labels[FindColumn(batch.labels, "click")];
    for (int i = 0; i < batch.size; ++i) clicks += click.values[i] == 1;
    samples += batch.size;
    const SequenceColumn& history = batch.sequences[0];
    for (int i = 0; i < batch.size; ++i) ASSERT_LE(history.Length(i), 20u);
  }
  ASSERT_TRUE(reader->status().ok()) << reader->status();
  EXPECT_EQ(samples, expected_samples);
  EXPECT_EQ(reader->stats().bad_lines, 0u);
  EXPECT_EQ(clicks, expected_clicks);
}

}  // namespace
}  // namespace granary
