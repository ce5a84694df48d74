// serve_bench: the in-process cost of scoring serving requests (one user, N candidate items)
// with DUPN, the user side computed once per request (Model::ForwardOneUser) against once per
// candidate (Forward over the N samples, as training and evaluation run it).
//
// The model is the job --job (configs/movielens_dupn.pbtxt, the quickstart's) with its dense
// parameters drawn by params().Initialize; the embedding rows are random, held in an in-memory
// hash map that stands in for a served model bundle. Users, their last 20 ratings (the
// behaviour sequence) and the candidates come from MovieLens-100K (--movielens_dir): a request
// is a user and N distinct movies drawn at random. The numeric columns (statistics of the user
// and the item) are random per candidate; the behaviour's step fields listed in
// --candidate_step_fields (MovieLens' "similarity" of a history movie to the target) are
// random per candidate and step, the others (movie, genre, the rating's offsets from the
// user's and the movie's mean) come from the user's history.
//
// Each request is timed end to end as a server runs it in-process: build the Batch from the
// user's and the candidates' features, Prepare, look up the rows of the batch's keys, Forward
// or ForwardOneUser, copy every task's outputs into a response buffer. The two modes alternate
// request by request, so that both see the same load. Two model variants per run:
//   quickstart        the dataset config as it is: a candidate-dependent step field makes the
//                     LSTM depend on the candidate, so ForwardOneUser falls back to Forward;
//   user-only steps   the dataset config without --candidate_step_fields: the behaviour
//                     sequence depends on the user alone, as in the DUPN paper.
// Columns: requests/s (requests / seconds spent in that mode), p50 and p99 latency, and for the
// one-user rows the ratio of their requests/s to the per-item rows', and max |diff|, the
// largest difference between the two modes' outputs on one request (should be < 1e-5), and
// the median microseconds of each stage: build, prepare, lookup, forward (with the read).
//
// With --http (the default), the user-only variant's requests are also timed as granary_serve
// answers them, a third mode interleaved with the two: the same request as the JSON body of
// POST /score (built before timing; candidates in the columnar form, candidate_columns, or with
// --http_candidate_rows a JSON object per candidate), sent by a keep-alive httplib client to
// granary_serve's handlers (worker/serve/) on an httplib server in this process, over the same
// random rows as a model bundle made in memory (tests/bench/http_serving.h); timed from the send to
// the whole answer read. Its scores on the first request must equal the in-process ones to 1e-5, or
// the bench fails.
//
// Everything runs pinned to the CPU this thread started on (sched_setaffinity): the in-process
// modes on this thread; in the HTTP mode, this thread as the client and httplib's accept and
// one handler thread, all on that one core.
//
// Usage: serve_bench [--quick] [--candidates=1,100,1000] [--seconds=S] [--job=PATH] [--http]
//                    [--movielens_dir=DIR] [--candidate_step_fields=similarity] [--json=PATH]
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/feature_key.h"
#include "common/proto/serve.pb.h"
#include "gflags/gflags.h"
#include "google/protobuf/util/json_util.h"
#include "tests/bench/bench_json.h"
#include "tests/bench/bench_main.h"
#include "tests/bench/http_serving.h"
#include "worker/batch.h"
#include "worker/job_config.h"
#include "worker/models/model_factory.h"
#include "worker/nn/loss.h"
#include "worker/tools/movielens_input.h"

DEFINE_string(job, GRANARY_SOURCE_DIR "/configs/movielens_dupn.pbtxt",
              "The DUPN job config (its dataset_config beside it).");
DEFINE_string(movielens_dir, GRANARY_SOURCE_DIR "/../shared/data/movielens-100k",
              "The unpacked ml-100k folder.");
DEFINE_string(candidates, "1,100,1000", "Comma-separated candidate counts N per request.");
DEFINE_double(seconds, 3.0, "Seconds timed per model variant and N, both modes together.");
DEFINE_int32(min_requests, 20, "Requests timed per mode at least, whatever --seconds says.");
DEFINE_bool(quick, false, "A smoke run: N = 1 and 100, 0.1 s each.");
DEFINE_string(candidate_step_fields, "similarity",
              "Comma-separated step fields of the behaviour sequence that depend on the candidate; "
              "the 'user-only steps' variant drops them from the dataset config.");
DEFINE_int32(
    history_length, 0,
    "Steps of each user's behaviour sequence (the most recent earlier ratings), set as the "
    "dataset's max_sequence_length; 0 keeps the dataset config's (20 for MovieLens). A "
    "longer history, as in the DUPN paper, is more of a request's work on the user side.");
DEFINE_bool(http, true,
            "Also time the user-only variant's requests through granary_serve's HTTP handlers "
            "in this process (JSON bodies, one keep-alive client, one handler thread).");
DEFINE_bool(http_candidate_rows, false,
            "Send the HTTP mode's candidates in the row form (a JSON object per candidate) "
            "instead of the columnar form (candidate_columns), to compare the two.");
DEFINE_string(json, "", "If set, the result rows are also written here as a JSON array.");

namespace granary {
namespace {

using Clock = std::chrono::steady_clock;

// Requests drawn per N before timing; the timed loop cycles through them.
constexpr int kDrawnRequests = 64;
// Random values cycled through for the per-candidate numeric columns and step fields.
constexpr size_t kRandomValues = 4096;
constexpr uint32_t kSeed = 1;
// Quick mode's time per variant and N.
constexpr double kQuickSeconds = 0.1;

// A movie's features, keyed as a reader would key them.
struct MovieKeys {
  uint64_t id = 0;
  uint64_t first_genre = 0;  // the step field "genre"
  std::vector<uint64_t> genres;
  uint64_t year = 0;
  bool has_year = false;
  // The tokens of the dataset's cells, for the HTTP mode's requests.
  std::string id_token;
  std::string first_genre_token;
  std::string genres_token;  // joined by ','
  std::string year_token;    // empty if unknown
};

struct Step {
  int movie = 0;
  float rating_vs_mean = 0;
  float rating_vs_movie_mean = 0;
};

struct UserFeatures {
  std::vector<uint64_t> profile;            // in kUserColumns order
  std::vector<std::string> profile_tokens;  // the same columns' tokens
  std::vector<Step> history;                // oldest first, at most history_length
};

constexpr const char* kUserColumns[] = {"user_id", "gender", "age", "occupation", "zip3"};

// What the bench knows of MovieLens: features by id, keyed with the dataset's field names.
struct Catalog {
  absl::flat_hash_map<int, MovieKeys> movies;
  std::vector<int> movie_ids;
  std::vector<UserFeatures> users;
  std::vector<uint64_t> all_keys;
};

// history_length: the most recent earlier ratings a user's behaviour sequence keeps.
absl::StatusOr<Catalog> BuildCatalog(const MovielensInput& input, size_t history_length) {
  Catalog catalog;
  absl::flat_hash_set<uint64_t> keys;
  auto key = [&keys](std::string_view field, std::string_view token) {
    const uint64_t k = FeatureKey(field, token);
    keys.insert(k);
    return k;
  };
  absl::flat_hash_map<int, double> movie_sum, movie_count;
  absl::flat_hash_map<int, std::vector<Rating>> by_user;
  for (const Rating& r : input.ratings) {
    movie_sum[r.movie] += r.rating;
    movie_count[r.movie] += 1;
    by_user[r.user].push_back(r);
  }
  for (const auto& [id, movie] : input.movies) {
    MovieKeys& m = catalog.movies[id];
    m.id = key("movie_id", absl::StrCat(id));
    m.first_genre = key("genre", movie.first_genre);
    for (int genre : movie.genre_ids) m.genres.push_back(key("genre", input.genre_names[genre]));
    m.has_year = !movie.year.empty();
    if (m.has_year) m.year = key("year", movie.year);
    m.id_token = absl::StrCat(id);
    m.first_genre_token = movie.first_genre;
    m.genres_token = movie.genres;
    m.year_token = movie.year;
    catalog.movie_ids.push_back(id);
  }
  std::sort(catalog.movie_ids.begin(), catalog.movie_ids.end());
  for (auto& [id, ratings] : by_user) {
    const auto found = input.users.find(id);
    if (found == input.users.end()) continue;
    const User& u = found->second;
    UserFeatures user;
    user.profile = {key("user_id", absl::StrCat(id)), key("gender", u.gender), key("age", u.age),
                    key("occupation", u.occupation), key("zip3", u.zip3)};
    user.profile_tokens = {absl::StrCat(id), u.gender, u.age, u.occupation, u.zip3};
    std::sort(ratings.begin(), ratings.end(),
              [](const Rating& a, const Rating& b) { return a.timestamp < b.timestamp; });
    double mean = 0;
    for (const Rating& r : ratings) mean += r.rating;
    mean /= static_cast<double>(ratings.size());
    const size_t first = ratings.size() > history_length ? ratings.size() - history_length : 0;
    for (size_t i = first; i < ratings.size(); ++i) {
      const Rating& r = ratings[i];
      user.history.push_back(
          {r.movie, static_cast<float>(r.rating - mean),
           static_cast<float>(r.rating - movie_sum[r.movie] / movie_count[r.movie])});
    }
    catalog.users.push_back(std::move(user));
  }
  if (catalog.users.empty() || catalog.movie_ids.empty()) {
    return absl::InvalidArgumentError("MovieLens input has no users or no movies");
  }
  catalog.all_keys.assign(keys.begin(), keys.end());
  return catalog;
}

// A request as a server receives it: a user and the ids of N candidate movies.
struct Request {
  int user = 0;  // index into Catalog::users
  std::vector<int> movies;
};

// Builds the Batch of one request for `dataset`, reusing *batch's memory: every sample is the
// user with one candidate. Labels are absent (a request has none). Numeric columns, and numeric
// step fields other than the history's rating offsets, are read from a table of random values:
// per candidate for numeric columns and for the step fields in `candidate_step_fields`, per
// step (alike for every candidate) for the others. Where each column comes from is resolved
// once, by Create.
class RequestBatchBuilder {
 public:
  // InvalidArgument naming a column or step field of `dataset` that MovieLens has no feature
  // for.
  static absl::StatusOr<RequestBatchBuilder> Create(
      const proto::DatasetConfig& dataset, const Catalog& catalog,
      const absl::flat_hash_set<std::string>& candidate_step_fields) {
    RequestBatchBuilder builder(catalog);
    for (const proto::ColumnConfig& column : dataset.columns()) {
      Source source = Source::kIgnored;
      switch (column.role()) {
        case proto::ColumnConfig::LABEL:
          source = Source::kLabel;
          break;
        case proto::ColumnConfig::NUMERIC:
          source = Source::kRandom;
          break;
        case proto::ColumnConfig::CATEGORICAL: {
          const auto profile =
              std::find(std::begin(kUserColumns), std::end(kUserColumns), column.name());
          if (profile != std::end(kUserColumns)) {
            source = Source::kProfile;
            builder.profile_index_.push_back(static_cast<int>(profile - std::begin(kUserColumns)));
          } else if (column.name() == "movie_id") {
            source = Source::kMovieId;
          } else if (column.name() == "year") {
            source = Source::kMovieYear;
          }
          break;
        }
        case proto::ColumnConfig::MULTI_CATEGORICAL:
          if (column.name() == "genres") source = Source::kMovieGenres;
          break;
        case proto::ColumnConfig::SEQUENCE:
          source = Source::kHistory;
          for (const proto::StepFieldConfig& step : column.step_fields()) {
            Source step_source = Source::kIgnored;
            if (step.name() == "movie_id") {
              step_source = Source::kMovieId;
            } else if (step.name() == "genre") {
              step_source = Source::kFirstGenre;
            } else if (step.name() == "rating_vs_mean") {
              step_source = Source::kRatingVsMean;
            } else if (step.name() == "rating_vs_movie_mean") {
              step_source = Source::kRatingVsMovieMean;
            } else if (step.kind() == proto::StepFieldConfig::NUMERIC) {
              step_source = candidate_step_fields.contains(step.name()) ? Source::kRandom
                                                                        : Source::kRandomPerStep;
            } else {
              return absl::InvalidArgumentError(absl::StrCat(
                  "serve_bench: no MovieLens feature for step field '", step.name(), "'"));
            }
            builder.steps_.push_back({step.name(), step.kind(), step_source});
          }
          break;
        default:
          continue;
      }
      if (source == Source::kIgnored) {
        return absl::InvalidArgumentError(
            absl::StrCat("serve_bench: no MovieLens feature for column '", column.name(), "'"));
      }
      builder.columns_.push_back({column.name(), source});
    }
    return builder;
  }

  void Build(const Request& request, Batch* batch) const {
    const int n = static_cast<int>(request.movies.size());
    const UserFeatures& user = catalog_->users[request.user];
    batch->size = n;
    batch->labels.clear();
    batch->numerics.clear();
    batch->categoricals.clear();
    batch->multi_categoricals.clear();
    batch->sequences.clear();
    movies_.clear();
    for (int movie : request.movies) movies_.push_back(&catalog_->movies.at(movie));
    size_t next_random = static_cast<size_t>(request.user) * static_cast<size_t>(n);
    auto draw = [&]() { return random_[next_random++ % kRandomValues]; };
    size_t profile = 0;
    for (const Column& column : columns_) {
      switch (column.source) {
        case Source::kLabel:
          batch->labels.push_back(
              {column.name, std::vector<float>(n, 0.0f), std::vector<uint8_t>(n, 0)});
          break;
        case Source::kRandom: {
          FloatColumn& values = batch->numerics.emplace_back();
          values.name = column.name;
          values.present.assign(n, 1);
          values.values.resize(n);
          for (float& v : values.values) v = draw();
          break;
        }
        case Source::kProfile:
          batch->categoricals.push_back(
              {column.name, std::vector<uint64_t>(n, user.profile[profile_index_[profile++]]),
               std::vector<uint8_t>(n, 1)});
          break;
        case Source::kMovieId:
        case Source::kMovieYear: {
          CategoricalColumn& keys = batch->categoricals.emplace_back();
          keys.name = column.name;
          keys.keys.resize(n);
          keys.present.resize(n);
          const bool year = column.source == Source::kMovieYear;
          for (int c = 0; c < n; ++c) {
            keys.keys[c] = year ? movies_[c]->year : movies_[c]->id;
            keys.present[c] = year ? movies_[c]->has_year : 1;
          }
          break;
        }
        case Source::kMovieGenres: {
          MultiCategoricalColumn& keys = batch->multi_categoricals.emplace_back();
          keys.name = column.name;
          keys.offsets.assign(1, 0);
          for (const MovieKeys* movie : movies_) {
            keys.keys.insert(keys.keys.end(), movie->genres.begin(), movie->genres.end());
            keys.offsets.push_back(static_cast<uint32_t>(keys.keys.size()));
          }
          break;
        }
        case Source::kHistory:
          BuildHistory(column.name, user, n, draw, batch);
          break;
        default:
          break;
      }
    }
  }

 private:
  enum class Source {
    kIgnored,
    kLabel,
    kRandom,         // a random value per candidate (and step)
    kRandomPerStep,  // a step field's random value per step, alike for every candidate
    kProfile,
    kMovieId,
    kMovieYear,
    kMovieGenres,
    kFirstGenre,
    kHistory,
    kRatingVsMean,
    kRatingVsMovieMean,
  };
  struct Column {
    std::string name;
    Source source;
  };
  struct StepField {
    std::string name;
    proto::StepFieldConfig::Kind kind;
    Source source;
  };

  explicit RequestBatchBuilder(const Catalog& catalog) : catalog_(&catalog) {
    std::mt19937 rng(kSeed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    random_.resize(kRandomValues);
    for (float& v : random_) v = uniform(rng);
  }

  template <typename Draw>
  void BuildHistory(const std::string& name, const UserFeatures& user, int n, Draw& draw,
                    Batch* batch) const {
    SequenceColumn& sequence = batch->sequences.emplace_back();
    sequence.name = name;
    const size_t length = user.history.size();
    sequence.offsets.resize(n + 1);
    for (int c = 0; c <= n; ++c) sequence.offsets[c] = static_cast<uint32_t>(length * c);
    sequence.fields.resize(steps_.size());
    for (size_t j = 0; j < steps_.size(); ++j) {
      const StepField& step = steps_[j];
      SequenceField& field = sequence.fields[j];
      field.name = step.name;
      field.kind = step.kind;
      field.keys.clear();
      field.values.clear();
      if (step.kind == proto::StepFieldConfig::CATEGORICAL) {
        field.keys.resize(length);
        for (size_t t = 0; t < length; ++t) {
          const MovieKeys& movie = catalog_->movies.at(user.history[t].movie);
          field.keys[t] = step.source == Source::kMovieId ? movie.id : movie.first_genre;
        }
        for (int c = 1; c < n; ++c)
          field.keys.insert(field.keys.end(), field.keys.begin(), field.keys.begin() + length);
        continue;
      }
      field.values.resize(length);
      for (size_t t = 0; t < length; ++t) {
        const Step& s = user.history[t];
        field.values[t] = step.source == Source::kRatingVsMean        ? s.rating_vs_mean
                          : step.source == Source::kRatingVsMovieMean ? s.rating_vs_movie_mean
                                                                      : random_[t];
      }
      for (int c = 1; c < n; ++c) {
        if (step.source == Source::kRandom) {
          for (size_t t = 0; t < length; ++t) field.values.push_back(draw());
        } else {
          field.values.insert(field.values.end(), field.values.begin(),
                              field.values.begin() + length);
        }
      }
    }
  }

  const Catalog* catalog_;
  std::vector<Column> columns_;
  std::vector<int> profile_index_;  // per kProfile column, in order: index into profile
  std::vector<StepField> steps_;
  std::vector<float> random_;
  mutable std::vector<const MovieKeys*> movies_;  // Build's scratch: the request's movies
};

// The embedding rows of every key of the catalog, random, in memory: what a server reads from
// its model bundle. Unknown keys read as zero rows.
class RowStore {
 public:
  RowStore(const std::vector<uint64_t>& keys, int dim) : table_(keys.size(), dim) {
    std::mt19937 rng(kSeed);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    for (Eigen::Index i = 0; i < table_.size(); ++i) table_.data()[i] = normal(rng);
    for (size_t i = 0; i < keys.size(); ++i) row_of_key_[keys[i]] = static_cast<int32_t>(i);
  }

  void LookUp(const std::vector<uint64_t>& keys, nn::Matrix* rows) const {
    rows->resize(static_cast<Eigen::Index>(keys.size()), table_.cols());
    for (size_t i = 0; i < keys.size(); ++i) {
      const auto found = row_of_key_.find(keys[i]);
      if (found == row_of_key_.end()) {
        rows->row(i).setZero();
      } else {
        rows->row(i) = table_.row(found->second);
      }
    }
  }

  // The same rows as a served table named `name`, for HttpServing.
  ModelBundle::InMemoryTable AsServedTable(const std::string& name) const {
    ModelBundle::InMemoryTable table{name, static_cast<int>(table_.cols()), {}, {}};
    for (const auto& [key, row] : row_of_key_) {
      table.keys.push_back(key);
      for (Eigen::Index j = 0; j < table_.cols(); ++j) table.values.push_back(table_(row, j));
    }
    return table;
  }

 private:
  nn::Matrix table_;
  absl::flat_hash_map<uint64_t, int32_t> row_of_key_;
};

// The body of POST /score (common/proto/serve.proto ScoreRequest) holding what `batch` holds,
// `batch` built by RequestBatchBuilder from `request` for `dataset`: the user's profile and
// history in the user's columns, each candidate's movie columns and numeric values (printed
// with 9 significant digits, which read back as the same float). The history's numeric step
// fields are the first candidate's, so the behaviour sequence must not depend on the candidate.
absl::StatusOr<std::string> ScoreRequestBody(const proto::DatasetConfig& dataset,
                                             const Catalog& catalog, const Request& request,
                                             const Batch& batch) {
  const UserFeatures& user = catalog.users[request.user];
  proto::ScoreRequest body;
  auto& user_columns = *body.mutable_user();
  for (size_t i = 0; i < std::size(kUserColumns); ++i) {
    user_columns[kUserColumns[i]] = user.profile_tokens[i];
  }
  for (const proto::ColumnConfig& column : dataset.columns()) {
    if (column.role() != proto::ColumnConfig::SEQUENCE) continue;
    const SequenceColumn* sequence = nullptr;
    for (const SequenceColumn& s : batch.sequences) {
      if (s.name == column.name()) sequence = &s;
    }
    if (sequence == nullptr) return absl::InternalError("serve_bench: no " + column.name());
    std::vector<std::string> steps;
    for (size_t t = 0; t < user.history.size(); ++t) {
      const MovieKeys& movie = catalog.movies.at(user.history[t].movie);
      std::vector<std::string> fields;
      for (int j = 0; j < column.step_fields_size(); ++j) {
        const proto::StepFieldConfig& step = column.step_fields(j);
        if (step.kind() == proto::StepFieldConfig::NUMERIC) {
          fields.push_back(absl::StrFormat("%.9g", sequence->fields[j].values[t]));
        } else {
          fields.push_back(step.name() == "movie_id" ? movie.id_token : movie.first_genre_token);
        }
      }
      steps.push_back(absl::StrJoin(fields, ","));
    }
    user_columns[column.name()] = absl::StrJoin(steps, ";");
  }
  for (size_t c = 0; FLAGS_http_candidate_rows && c < request.movies.size(); ++c) {
    const MovieKeys& movie = catalog.movies.at(request.movies[c]);
    auto& fields = *body.add_candidates()->mutable_fields();
    fields["movie_id"].set_string_value(movie.id_token);
    fields["genres"].set_string_value(movie.genres_token);
    if (movie.has_year) fields["year"].set_string_value(movie.year_token);
    for (const FloatColumn& numeric : batch.numerics) {
      fields[numeric.name].set_string_value(absl::StrFormat("%.9g", numeric.values[c]));
    }
  }
  // Else the columnar form (candidate_columns), the fast one to parse; a movie without a year
  // has an empty cell (missing).
  auto& columns = *body.mutable_candidate_columns();
  for (size_t c = 0; !FLAGS_http_candidate_rows && c < request.movies.size(); ++c) {
    const MovieKeys& movie = catalog.movies.at(request.movies[c]);
    columns["movie_id"].add_values(movie.id_token);
    columns["genres"].add_values(movie.genres_token);
    columns["year"].add_values(movie.has_year ? movie.year_token : "");
    for (const FloatColumn& numeric : batch.numerics) {
      columns[numeric.name].add_values(absl::StrFormat("%.9g", numeric.values[c]));
    }
  }
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(body, &json).ok()) {
    return absl::InternalError("serve_bench: cannot print a ScoreRequest");
  }
  return json;
}

// The largest difference between the scores of a /score response and `outputs`, the model's
// outputs of the same request in task order, turned into scores as granary_serve does
// (worker/serve/scorer.h): sigmoid, softmax or as it is.
absl::StatusOr<double> MaxScoreDiff(const std::string& response_json,
                                    const std::vector<proto::TaskConfig>& tasks,
                                    const std::vector<float>& outputs) {
  proto::ScoreResponse response;
  if (!google::protobuf::util::JsonStringToMessage(response_json, &response).ok() ||
      response.tasks_size() != static_cast<int>(tasks.size())) {
    return absl::InternalError("serve_bench: a /score response that does not parse");
  }
  std::vector<double> expected;
  size_t next = 0;
  for (size_t k = 0; k < tasks.size(); ++k) {
    const int classes = response.tasks(static_cast<int>(k)).classes();
    const size_t values = static_cast<size_t>(response.tasks(static_cast<int>(k)).scores_size());
    for (size_t b = 0; b < values / static_cast<size_t>(classes); ++b, next += classes) {
      if (next + classes > outputs.size()) break;
      const float* row = outputs.data() + next;
      if (tasks[k].head() == proto::TaskConfig::MULTICLASS) {
        const float top = *std::max_element(row, row + classes);
        double sum = 0;
        for (int j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(row[j] - top));
        for (int j = 0; j < classes; ++j) {
          expected.push_back(std::exp(static_cast<double>(row[j] - top)) / sum);
        }
      } else if (tasks[k].head() == proto::TaskConfig::REGRESSION) {
        expected.push_back(row[0]);
      } else {
        expected.push_back(nn::Sigmoid(row[0]));
      }
    }
  }
  std::vector<double> got;
  for (const proto::TaskScores& task : response.tasks()) {
    got.insert(got.end(), task.scores().begin(), task.scores().end());
  }
  if (got.size() != expected.size() || expected.size() != outputs.size()) {
    return absl::InternalError(absl::StrCat("serve_bench: /score answered ", got.size(),
                                            " scores, the model has ", outputs.size()));
  }
  double max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i)
    max_diff = std::max(max_diff, std::abs(got[i] - expected[i]));
  return max_diff;
}

// A request's stages, timed apart: build the Batch, Prepare, look up the rows, Forward (or
// ForwardOneUser) and read the outputs.
constexpr int kStages = 4;
// The timed modes: per item, user side once, and (user-only variant, --http) over HTTP.
constexpr int kModes = 3;
constexpr int kHttpMode = 2;
// The largest difference allowed between the HTTP and the in-process scores (issue 19).
constexpr double kScoreTolerance = 1e-5;

struct ModeTimes {
  std::vector<double> seconds;  // one per request
  double total = 0;
  std::vector<double> stages[kStages];  // one per request each
};

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1,
                                static_cast<size_t>(fraction * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index];
}

absl::StatusOr<std::vector<int>> ParseCounts(const std::string& text) {
  std::vector<int> counts;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int count = 0;
    if (!absl::SimpleAtoi(part, &count) || count < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--candidates: '", part, "' is not a count >= 1"));
    }
    counts.push_back(count);
  }
  return counts;
}

// Pins this thread to the CPU it runs on; returns a line saying where, or why not.
std::string PinToOneCpu() {
  const int cpu = sched_getcpu();
  if (cpu < 0) return "not pinned (sched_getcpu failed); one thread";
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    return "not pinned (sched_setaffinity failed); one thread";
  }
  return absl::StrCat("one thread pinned to CPU ", cpu);
}

absl::Status Run() {
  const bool quick = FLAGS_quick;
  absl::StatusOr<std::vector<int>> counts = ParseCounts(quick ? "1,100" : FLAGS_candidates);
  if (!counts.ok()) return counts.status();
  const double seconds = quick ? kQuickSeconds : FLAGS_seconds;
  absl::StatusOr<JobSpec> spec = LoadJobConfig(FLAGS_job);
  if (!spec.ok()) return spec.status();
  if (!spec->job.model().has_dupn()) {
    return absl::InvalidArgumentError(absl::StrCat(FLAGS_job, ": not a DUPN job"));
  }
  absl::StatusOr<MovielensInput> input = ReadMovielens(FLAGS_movielens_dir);
  if (!input.ok()) return input.status();
  if (FLAGS_history_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--history_length must be >= 0, not ", FLAGS_history_length));
  }
  size_t history_length = 0;
  for (proto::ColumnConfig& column : *spec->dataset.mutable_columns()) {
    if (column.name() != spec->job.model().dupn().behavior_column()) continue;
    if (FLAGS_history_length > 0) {
      column.set_max_sequence_length(static_cast<uint32_t>(FLAGS_history_length));
      if (column.has_max_sequence_steps() &&
          column.max_sequence_steps() < column.max_sequence_length()) {
        column.set_max_sequence_steps(column.max_sequence_length());
      }
    }
    history_length =
        column.has_max_sequence_length() ? column.max_sequence_length() : kDefaultMaxSequenceLength;
  }
  absl::StatusOr<Catalog> catalog = BuildCatalog(*input, history_length);
  if (!catalog.ok()) return catalog.status();
  const absl::flat_hash_set<std::string> candidate_steps = [] {
    absl::flat_hash_set<std::string> names;
    for (absl::string_view name :
         absl::StrSplit(FLAGS_candidate_step_fields, ',', absl::SkipEmpty())) {
      names.insert(std::string(name));
    }
    return names;
  }();

  // The variants' dataset configs: as it is, and without the candidate-dependent steps.
  proto::DatasetConfig user_only = spec->dataset;
  for (proto::ColumnConfig& column : *user_only.mutable_columns()) {
    if (column.name() != spec->job.model().dupn().behavior_column()) continue;
    auto* steps = column.mutable_step_fields();
    steps->erase(std::remove_if(steps->begin(), steps->end(),
                                [&](const proto::StepFieldConfig& step) {
                                  return candidate_steps.contains(step.name());
                                }),
                 steps->end());
  }
  struct Variant {
    std::string name;
    const proto::DatasetConfig* dataset;
  };
  const std::vector<Variant> variants = {{"quickstart", &spec->dataset},
                                         {"user-only steps", &user_only}};

  const std::string pinned = PinToOneCpu();
  absl::PrintF("serve_bench: DUPN of %s, %zu users x %zu movies of MovieLens-100K; %s\n", FLAGS_job,
               catalog->users.size(), catalog->movie_ids.size(), pinned);
  absl::PrintF("%-16s %5s  %-14s %10s %9s %9s %7s %10s  %s\n", "variant", "N", "mode", "requests/s",
               "p50 ms", "p99 ms", "ratio", "max |diff|", "p50 us: build+prepare+lookup+forward");
  const RowStore store(catalog->all_keys, static_cast<int>(spec->job.model().embedding_dim()));
  std::vector<std::string> json;
  size_t table_rows = 0;
  const Clock::time_point start = Clock::now();
  std::mt19937 rng(kSeed);
  // The server's path, run on the user-only variant: the one where the server's
  // ForwardOneUser computes the user side once.
  const bool http = FLAGS_http;
  JobSpec http_spec = *spec;
  http_spec.dataset = user_only;
  const std::vector<ModelBundle::InMemoryTable> served_tables = {
      store.AsServedTable(spec->job.model().sparse_table())};
  for (const Variant& variant : variants) {
    const bool http_variant = http && variant.dataset == &user_only;
    std::unique_ptr<HttpServing> serving;
    if (http_variant) {
      absl::StatusOr<std::unique_ptr<HttpServing>> started =
          HttpServing::Start(http_spec, served_tables);
      if (!started.ok()) return started.status();
      serving = *std::move(started);
    }
    absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(spec->job.model(), *variant.dataset);
    if (!model.ok()) return model.status();
    // The server's dense parameters: the job seed's initial values (worker/serve/scorer.h).
    (*model)->params().Initialize(spec->job.training().seed());
    absl::StatusOr<RequestBatchBuilder> builder =
        RequestBatchBuilder::Create(*variant.dataset, *catalog, candidate_steps);
    if (!builder.ok()) return builder.status();
    std::unique_ptr<ModelInput> model_input = (*model)->NewInput();
    Batch batch;
    nn::Matrix rows;
    std::vector<float> response;
    double stages[kStages] = {};  // the last request's
    for (int n : *counts) {
      std::vector<Request> requests(kDrawnRequests);
      std::vector<int> movies = catalog->movie_ids;
      for (Request& request : requests) {
        request.user = static_cast<int>(rng() % catalog->users.size());
        const int take = std::min<int>(n, static_cast<int>(movies.size()));
        for (int i = 0; i < take; ++i) {
          std::swap(movies[i], movies[i + rng() % (movies.size() - i)]);
        }
        request.movies.assign(movies.begin(), movies.begin() + take);
        while (static_cast<int>(request.movies.size()) < n) {
          request.movies.push_back(movies[rng() % movies.size()]);
        }
      }
      // One request: build, prepare, look up, forward, read. Returns its seconds.
      auto serve = [&](const Request& request, bool one_user) -> absl::StatusOr<double> {
        const Clock::time_point begin = Clock::now();
        builder->Build(request, &batch);
        const Clock::time_point built = Clock::now();
        const absl::Status status = (*model)->Prepare(batch, model_input.get());
        if (!status.ok()) return status;
        const Clock::time_point prepared = Clock::now();
        store.LookUp(model_input->keys, &rows);
        const Clock::time_point looked_up = Clock::now();
        if (one_user) {
          (*model)->ForwardOneUser(*model_input, rows);
        } else {
          (*model)->Forward(*model_input, rows);
        }
        response.clear();
        for (size_t k = 0; k < (*model)->tasks().size(); ++k) {
          const nn::Matrix& output = (*model)->output(static_cast<int>(k));
          response.insert(response.end(), output.data(), output.data() + output.size());
        }
        const Clock::time_point end = Clock::now();
        stages[0] = std::chrono::duration<double>(built - begin).count();
        stages[1] = std::chrono::duration<double>(prepared - built).count();
        stages[2] = std::chrono::duration<double>(looked_up - prepared).count();
        stages[3] = std::chrono::duration<double>(end - looked_up).count();
        return std::chrono::duration<double>(end - begin).count();
      };
      // The two modes' outputs on the first request.
      if (absl::StatusOr<double> s = serve(requests[0], false); !s.ok()) return s.status();
      const std::vector<float> per_item_scores = response;
      if (absl::StatusOr<double> s = serve(requests[0], true); !s.ok()) return s.status();
      float max_diff = 0;
      for (size_t i = 0; i < response.size(); ++i) {
        max_diff = std::max(max_diff, std::abs(response[i] - per_item_scores[i]));
      }
      // The HTTP mode's bodies, made before timing as a client would hold them, and its
      // scores on the first request against the in-process ones.
      std::vector<std::string> bodies;
      double http_max_diff = 0;
      if (http_variant) {
        const std::vector<float> one_user_scores = response;
        Batch body_batch;
        for (const Request& request : requests) {
          builder->Build(request, &body_batch);
          absl::StatusOr<std::string> body =
              ScoreRequestBody(*variant.dataset, *catalog, request, body_batch);
          if (!body.ok()) return body.status();
          bodies.push_back(*std::move(body));
        }
        absl::StatusOr<std::string> answer = serving->Score(bodies[0]);
        if (!answer.ok()) return answer.status();
        absl::StatusOr<double> diff = MaxScoreDiff(*answer, (*model)->tasks(), one_user_scores);
        if (!diff.ok()) return diff.status();
        http_max_diff = *diff;
        if (http_max_diff > kScoreTolerance) {
          return absl::InternalError(absl::StrFormat(
              "serve_bench: N=%d: HTTP scores differ from the in-process ones by %g (> %g)", n,
              http_max_diff, kScoreTolerance));
        }
      }
      // One request through granary_serve's handlers: POST /score and read the answer.
      auto serve_http = [&](const std::string& body) -> absl::StatusOr<double> {
        const Clock::time_point begin = Clock::now();
        absl::StatusOr<std::string> answer = serving->Score(body);
        if (!answer.ok()) return answer.status();
        return std::chrono::duration<double>(Clock::now() - begin).count();
      };

      const int modes = http_variant ? kModes : kModes - 1;
      ModeTimes times[kModes];  // [0] per item, [1] one user, [2] HTTP
      const Clock::time_point phase = Clock::now();
      for (size_t r = 0;; ++r) {
        const bool enough_time =
            std::chrono::duration<double>(Clock::now() - phase).count() >= seconds;
        bool enough_requests = true;
        for (int mode = 0; mode < modes; ++mode) {
          enough_requests = enough_requests &&
                            times[mode].seconds.size() >= static_cast<size_t>(FLAGS_min_requests);
        }
        if (enough_time && enough_requests) break;
        const int mode = static_cast<int>(r % static_cast<size_t>(modes));
        const size_t index = (r / static_cast<size_t>(modes)) % requests.size();
        absl::StatusOr<double> took =
            mode == kHttpMode ? serve_http(bodies[index]) : serve(requests[index], mode == 1);
        if (!took.ok()) return took.status();
        times[mode].seconds.push_back(*took);
        times[mode].total += *took;
        if (mode == kHttpMode) continue;
        for (int i = 0; i < kStages; ++i) times[mode].stages[i].push_back(stages[i]);
      }
      const double per_item_rate = static_cast<double>(times[0].seconds.size()) / times[0].total;
      for (int mode = 0; mode < modes; ++mode) {
        const ModeTimes& t = times[mode];
        const double rate = static_cast<double>(t.seconds.size()) / t.total;
        const double p50 = 1e3 * Percentile(t.seconds, 0.5);
        const double p99 = 1e3 * Percentile(t.seconds, 0.99);
        const std::string mode_name = mode == 0   ? "per item"
                                      : mode == 1 ? "user side once"
                                                  : "http";
        const double ratio = mode >= 1 ? rate / per_item_rate : 0;
        const double diff = mode == kHttpMode ? http_max_diff : max_diff;
        const std::string stage_column =
            mode == kHttpMode
                ? std::string(FLAGS_http_candidate_rows
                                  ? "round trip: row JSON, handlers, the same stages"
                                  : "round trip: columnar JSON, handlers, the same stages")
                : absl::StrFormat("%.0f+%.0f+%.0f+%.0f", 1e6 * Percentile(t.stages[0], 0.5),
                                  1e6 * Percentile(t.stages[1], 0.5),
                                  1e6 * Percentile(t.stages[2], 0.5),
                                  1e6 * Percentile(t.stages[3], 0.5));
        absl::PrintF("%-16s %5d  %-14s %10.1f %9.3f %9.3f %7s %10s  %s\n", variant.name, n,
                     mode_name, rate, p50, p99, mode >= 1 ? absl::StrFormat("%.2fx", ratio) : "",
                     mode >= 1 ? absl::StrFormat("%.2g", diff) : "", stage_column);
        json.push_back(absl::StrFormat(
            R"({"bench": "serve", "variant": "%s", "candidates": %d, "mode": "%s", )"
            R"("requests": %zu, "requests_per_second": %s, "p50_ms": %s, "p99_ms": %s, )"
            R"("ratio_vs_per_item": %s, "max_abs_diff": %.3g})",
            variant.name, n, mode_name, t.seconds.size(), JsonNumberOrNull(rate),
            JsonNumberOrNull(p50), JsonNumberOrNull(p99), JsonNumberOrNull(ratio), diff));
        ++table_rows;
      }
    }
  }
  return FinishTable(table_rows, std::chrono::duration<double>(Clock::now() - start).count(),
                     FLAGS_json, json);
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  return granary::BenchmarkMain(
      "serve_bench",
      "serve_bench [--quick] [--candidates=1,100,1000] [--seconds=S] [--min_requests=N] "
      "[--http] [--job=PATH] [--movielens_dir=DIR] [--candidate_step_fields=similarity] "
      "[--json=PATH]",
      argc, argv, granary::Run);
}
