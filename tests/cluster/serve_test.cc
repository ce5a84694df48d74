// Tests of granary_serve: two days of a two-task stream trained by launch/daily.sh on
// 127.0.0.1, served over real HTTP (Python's http.client, tests/cluster/serve_client.py). Checks
// the scores against the trainer's evaluation of the same rows, the answers to bad requests,
// and that a third day closed while a client keeps asking is picked up without a failed request
// and with the scores of the day-3 model.
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/feature_key.h"
#include "common/proto/serve.pb.h"
#include "common/vector_file.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/daily_model.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

const std::string kBin = GRANARY_BINARY_DIR;
const std::string kClient = std::string(GRANARY_SOURCE_DIR) + "/tests/cluster/serve_client.py";
const std::vector<std::string> kDays = {"20261101", "20261102", "20261103"};
constexpr int kUsers = 8;
constexpr int kItemsPerDay = 12;
constexpr int kItemDrift = 10;  // day d holds items kItemDrift * d .. + kItemsPerDay - 1
constexpr double kTolerance = 1e-5;
const absl::Duration kStartTimeout = absl::Seconds(60);
const absl::Duration kClientTimeout = absl::Seconds(30);
// How long the client loop may run at most: two days' training and more.
constexpr int kLoopSeconds = 200;

constexpr char kClusterConfig[] = R"(
tables {
  name: "emb"
  dim: 4
  initializer { kind: NORMAL scale: 0.1 seed: 7 }
  optimizer { sgd { learning_rate: 0.5 } }
}
tables {
  name: "dense"
  dim: 32
  initializer { kind: ZEROS }
  optimizer { adam { learning_rate: 0.01 } }
}
)";

// A job on the days' columns: `rating_role` LABEL for a rating task, else IGNORED; `model` the
// model block's contents but the tables.
std::string JobConfig(const std::string& rating_role, const std::string& model) {
  return absl::StrCat(R"(
dataset {
  columns { name: "click" role: LABEL }
  columns { name: "rating" role: )",
                      rating_role, R"( }
  columns { name: "user" role: CATEGORICAL }
  columns { name: "item" role: CATEGORICAL }
}
model { sparse_table: "emb" dense_table: "dense" )",
                      model, R"(}
training {
  batch_size: 16
  epochs: 1
  seed: 1
  train_files: "part-*"
  eval_files: "part-*"
  metrics_file: "metrics.jsonl"
  barrier_timeout_seconds: 60
}
)");
}

// Two tasks over a shared bottom.
const std::string kJobConfig = JobConfig("LABEL", R"(
  embedding_dim: 4
  shared_bottom { fields: ["user", "item"] bottom_mlp: [8] }
  tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 hidden_sizes: [4] }
  tasks { name: "rating" head: REGRESSION label_column: "rating" loss_weight: 1 hidden_sizes: [4] }
)");

// The items of day `d`, in the order of each user's lines.
std::vector<int> ItemsOf(int d) {
  std::vector<int> items;
  for (int i = kItemDrift * d; i < kItemDrift * d + kItemsPerDay; ++i) items.push_back(i);
  return items;
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = MakeTempDir("granary-serve");
    ASSERT_FALSE(dir.empty());
    root_ = fs::canonical(dir).string();
    std::ofstream(root_ + "/cluster.pbtxt") << kClusterConfig;
    std::ofstream(root_ + "/job.pbtxt") << kJobConfig;
    // Day d: every user with every item of the day, user by user.
    for (size_t d = 0; d < kDays.size(); ++d) {
      fs::create_directories(root_ + "/data/" + kDays[d]);
      std::ofstream part(root_ + "/data/" + kDays[d] + "/part-00000");
      part << "click\trating\tuser\titem\n";
      for (int user = 0; user < kUsers; ++user) {
        for (int item : ItemsOf(static_cast<int>(d))) {
          part << (user + item) % 2 << "\t" << (user * 3 + item) % 5 << "\t" << user << "\t" << item
               << "\n";
        }
      }
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  void RunDay(const std::string& day, const std::vector<std::string>& more) {
    daily_model::DayRun run;
    run.root = root_;
    run.model_dir = root_ + "/model";
    run.servers = servers_;
    std::string log;
    ASSERT_EQ(daily_model::RunDay(run, day, more, &log), 0) << log;
  }

  // The trainer's evaluation after training on `day`: per task, the scores of the day's
  // samples in input order.
  std::vector<std::vector<double>> EvalScores(const std::string& day) {
    std::vector<std::vector<double>> scores(2);
    std::string file;
    for (const auto& entry : fs::recursive_directory_iterator(root_ + "/model/runs/" + day)) {
      if (entry.path().filename() == "eval-epoch1-worker0.tsv") file = entry.path().string();
    }
    EXPECT_FALSE(file.empty()) << "no evaluation file of " << day;
    for (absl::string_view line : absl::StrSplit(ReadFile(file), '\n', absl::SkipEmpty())) {
      std::vector<std::string> cells = absl::StrSplit(line, '\t');
      int task = 0;
      double score = 0;
      EXPECT_TRUE(absl::SimpleAtoi(cells[0], &task) && absl::SimpleAtod(cells[1], &score));
      scores.at(task).push_back(score);
    }
    return scores;
  }

  // One request through serve_client.py; *body gets the response body. Returns the status.
  int Request(const std::string& method, const std::string& path, const std::string& body,
              std::string* response) {
    const std::string body_file = absl::StrCat(root_, "/body-", ++requests_);
    const std::string out_file = body_file + ".out";
    if (body.empty()) {
      std::ofstream(body_file) << "";
    } else {
      std::ofstream(body_file) << body;
    }
    absl::StatusOr<ChildProcess> client =
        ChildProcess::Start({"/usr/bin/python3", kClient, "once", address_, method, path,
                             body.empty() ? "-" : body_file, out_file},
                            body_file + ".log");
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return -1;
    std::optional<int> code = client->WaitForExit(kClientTimeout);
    EXPECT_EQ(code, 0) << client->ReadLog();
    const std::string out = ReadFile(out_file);
    const size_t newline = out.find('\n');
    int status = -1;
    EXPECT_TRUE(absl::SimpleAtoi(out.substr(0, newline), &status)) << out;
    *response = newline == std::string::npos ? "" : out.substr(newline + 1);
    return status;
  }

  // The body of a score request for `user` and `items`.
  static std::string ScoreBody(int user, const std::vector<int>& items) {
    std::string body = absl::StrCat(R"({"user": {"user": ")", user, R"("}, "candidates": [)");
    for (size_t i = 0; i < items.size(); ++i) {
      absl::StrAppend(&body, i > 0 ? ", " : "", R"({"item": ")", items[i], R"("})");
    }
    return body + "]}";
  }

  // The same request in the columnar form (candidate_columns).
  static std::string ScoreColumnsBody(int user, const std::vector<int>& items) {
    return absl::StrCat(R"({"user": {"user": ")", user,
                        R"("}, "candidate_columns": {"item": {"values": [")",
                        absl::StrJoin(items, R"(", ")"), R"("]}}})");
  }

  // Asks for every user's scores of the day's items and compares them with the trainer's
  // evaluation of the same samples after training on `day` (day index d).
  void ExpectScoresOfTheTrainedModel(int d, const std::string& delta_day) {
    const std::vector<std::vector<double>> expected = EvalScores(kDays[d]);
    const std::vector<int> items = ItemsOf(d);
    ASSERT_EQ(expected[0].size(), static_cast<size_t>(kUsers * kItemsPerDay));
    ASSERT_EQ(expected[1].size(), expected[0].size());
    for (int user = 0; user < kUsers; ++user) {
      std::string json;
      ASSERT_EQ(Request("POST", "/score", ScoreBody(user, items), &json), 200) << json;
      proto::ScoreResponse response;
      ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &response).ok()) << json;
      EXPECT_EQ(response.version().base_day(), expected_base_day_);
      EXPECT_EQ(response.version().delta_day(), delta_day);
      ASSERT_EQ(response.tasks_size(), 2);
      EXPECT_EQ(response.tasks(0).task(), "click");
      EXPECT_EQ(response.tasks(1).head(), "REGRESSION");
      for (int k = 0; k < 2; ++k) {
        ASSERT_EQ(response.tasks(k).scores_size(), kItemsPerDay);
        for (int c = 0; c < kItemsPerDay; ++c) {
          EXPECT_NEAR(response.tasks(k).scores(c), expected[k][user * kItemsPerDay + c], kTolerance)
              << "day " << kDays[d] << " task " << k << " user " << user << " item " << items[c];
        }
      }
      if (user == 0) {
        // The columnar form makes the same input lines, so the same scores, bit for bit.
        ASSERT_EQ(Request("POST", "/score", ScoreColumnsBody(user, items), &json), 200) << json;
        proto::ScoreResponse columnar;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &columnar).ok()) << json;
        ASSERT_EQ(columnar.tasks_size(), 2);
        for (int k = 0; k < 2; ++k) {
          ASSERT_EQ(columnar.tasks(k).scores_size(), kItemsPerDay);
          for (int c = 0; c < kItemsPerDay; ++c) {
            EXPECT_EQ(columnar.tasks(k).scores(c), response.tasks(k).scores(c))
                << "day " << kDays[d] << " task " << k << " item " << items[c];
          }
        }
      }
    }
  }

  // When the close report of `day` was written, in seconds since the epoch.
  double CloseReportTime(const std::string& day) const {
    struct stat info;
    const std::string path = root_ + "/model/reports/" + day + ".close.json";
    EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
    return static_cast<double>(info.st_mtim.tv_sec) + 1e-9 * info.st_mtim.tv_nsec;
  }

  // Starts granary_serve on the model folder, on a free port of 127.0.0.1.
  void StartServe(const std::vector<std::string>& extra_flags = {}) {
    const std::string address_file = root_ + "/serve.address";
    std::vector<std::string> argv = {kBin + "/granary_serve",
                                     "--job=" + root_ + "/job.pbtxt",
                                     "--cluster_config=" + root_ + "/cluster.pbtxt",
                                     "--model_dir=" + root_ + "/model",
                                     "--bind=127.0.0.1",
                                     "--port=0",
                                     "--address_file=" + address_file,
                                     "--poll_seconds=0.2",
                                     "--scratch_dir=" + root_ + "/serve-scratch"};
    argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
    absl::StatusOr<ChildProcess> serve = ChildProcess::Start(argv, root_ + "/serve.log");
    ASSERT_TRUE(serve.ok()) << serve.status();
    serve_.emplace(*std::move(serve));
    ASSERT_TRUE(WaitUntil([&] { return fs::exists(address_file); }, kStartTimeout))
        << serve_->ReadLog();
    address_ = std::string(absl::StripTrailingAsciiWhitespace(ReadFile(address_file)));
  }

  std::string root_;
  std::optional<ChildProcess> serve_;
  std::string address_;
  int requests_ = 0;
  // Parameter servers of each day RunDay trains.
  int servers_ = 1;
  // The base day ExpectScoresOfTheTrainedModel expects the answers to name.
  std::string expected_base_day_ = kDays[1];
};

TEST_F(ServeTest, ServesTheTrainedScoresRefusesBadRequestsAndFollowsANewDayWithoutAFailure) {
  RunDay(kDays[0], {"--cold_start"});
  RunDay(kDays[1], {});

  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChildProcess* serve = &*serve_;

  std::string json;
  ASSERT_EQ(Request("GET", "/healthz", "", &json), 200) << json;
  EXPECT_TRUE(absl::StrContains(json, R"("base_day":"20261102")")) << json;
  ASSERT_EQ(Request("GET", "/version", "", &json), 200) << json;
  EXPECT_TRUE(absl::StrContains(json, R"("delta_day":"")")) << json;

  ExpectScoresOfTheTrainedModel(1, "");

  // Bad requests: 4xx naming the problem; the server goes on.
  EXPECT_EQ(
      Request("POST", "/score", R"({"user": {"user": "1"}, "candidates": [{"itm": "3"}]})", &json),
      400);
  EXPECT_TRUE(absl::StrContains(json, "candidate 0: unknown column 'itm'")) << json;
  EXPECT_EQ(
      Request("POST", "/score", R"({"user": {"user": "1"}, "candidates": [{"item": 3}]})", &json),
      400);
  EXPECT_TRUE(absl::StrContains(json, "'item' is not a string")) << json;
  EXPECT_EQ(Request("POST", "/score", R"({"usr": {}, "candidates": [{"item": "3"}]})", &json), 400);
  EXPECT_TRUE(absl::StrContains(json, "usr")) << json;
  EXPECT_EQ(
      Request("POST", "/score",
              R"({"user": {"user": "1", "click": "1"}, "candidates": [{"item": "3"}]})", &json),
      400);
  EXPECT_TRUE(absl::StrContains(json, "column 'click' is a label")) << json;
  EXPECT_EQ(Request("POST", "/score", "{not json", &json), 400);
  EXPECT_TRUE(absl::StrContains(json, "not a score request")) << json;
  std::vector<int> too_many(10001, 3);
  EXPECT_EQ(Request("POST", "/score", ScoreBody(1, too_many), &json), 400);
  EXPECT_TRUE(absl::StrContains(json, "10001 candidates, more than --max_candidates=10000"))
      << json;
  EXPECT_EQ(Request("POST", "/score", std::string(10 << 20, ' '), &json), 413);
  EXPECT_TRUE(absl::StrContains(json, "over --max_body_bytes=1048576")) << json;
  EXPECT_EQ(Request("GET", "/nothing", "", &json), 404);
  EXPECT_EQ(Request("POST", "/topk", R"({"user": {"user": "1"}, "k": 3})", &json), 400);
  EXPECT_TRUE(absl::StrContains(json, "(shared_bottom) has no user and item vectors")) << json;
  ASSERT_EQ(Request("GET", "/healthz", "", &json), 200) << json;

  // Day 3 closes while a client keeps asking: every request answered, the version changes.
  std::ofstream(root_ + "/loop-body") << ScoreBody(0, {25});
  const std::string stop_file = root_ + "/loop-stop";
  const std::string loop_out = root_ + "/loop.out";
  absl::StatusOr<ChildProcess> loop =
      ChildProcess::Start({"/usr/bin/python3", kClient, "loop", address_, root_ + "/loop-body",
                           stop_file, loop_out, std::to_string(kLoopSeconds)},
                          root_ + "/loop.log");
  ASSERT_TRUE(loop.ok()) << loop.status();
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(loop_out).empty(); }, kStartTimeout));
  RunDay(kDays[2], {});
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(ReadFile(loop_out), "\t20261103\t"); },
                        kStartTimeout))
      << serve->ReadLog();
  std::ofstream(stop_file) << "stop";
  ASSERT_EQ(loop->WaitForExit(kClientTimeout), 0) << loop->ReadLog();

  std::map<std::string, std::vector<double>> scores_by_version;
  int answered = 0;
  double first_day3_answer = 0;
  for (absl::string_view line : absl::StrSplit(ReadFile(loop_out), '\n', absl::SkipEmpty())) {
    std::vector<std::string> cells = absl::StrSplit(line, '\t');
    ASSERT_EQ(cells[0], "200") << line;
    double score = 0;
    ASSERT_TRUE(absl::SimpleAtod(cells[2], &score)) << line;
    scores_by_version[cells[1]].push_back(score);
    ++answered;
    if (cells[1] == kDays[2] && first_day3_answer == 0) {
      ASSERT_TRUE(absl::SimpleAtod(cells[3], &first_day3_answer)) << line;
    }
  }
  EXPECT_GT(answered, 10);
  std::cout << "requests answered while day 3 closed: " << answered << " ("
            << scores_by_version[""].size() << " by day 2, " << scores_by_version["20261103"].size()
            << " by day 3); first day-3 answer " << first_day3_answer - CloseReportTime(kDays[2])
            << " s after its close report\n";
  ASSERT_EQ(scores_by_version.size(), 2u);
  ASSERT_EQ(scores_by_version.count(""), 1u);
  ASSERT_EQ(scores_by_version.count("20261103"), 1u);
  EXPECT_NE(scores_by_version[""].front(), scores_by_version["20261103"].front());
  // Within a version the answer never changes.
  for (const auto& [version, scores] : scores_by_version) {
    for (double score : scores) EXPECT_EQ(score, scores.front()) << version;
  }

  // Base of day 2 + delta of day 3 scores as the model trained through day 3.
  ExpectScoresOfTheTrainedModel(2, "20261103");
  serve->Signal(SIGTERM);
  serve->WaitForExit(kClientTimeout);
}

// --tables=rocksdb reads the base in place: the same scores as the trainer's evaluation (as the
// memory mode's, checked above), and once day 3 closes, its base serves in place. Two servers,
// so that keys are read from the shard the base's shard map gives them.
TEST_F(ServeTest, TablesReadInPlaceThroughRocksDbScoreAsTrainedAndSwitchToTheNewBase) {
  servers_ = 2;
  RunDay(kDays[0], {"--cold_start"});
  RunDay(kDays[1], {});
  ASSERT_NO_FATAL_FAILURE(StartServe({"--tables=rocksdb", "--base_block_cache_mb=8"}));
  ExpectScoresOfTheTrainedModel(1, "");

  RunDay(kDays[2], {});
  std::string json;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Request("GET", "/version", "", &json) == 200 &&
               absl::StrContains(json, R"("base_day":"20261103")");
      },
      kStartTimeout))
      << json << serve_->ReadLog();
  expected_base_day_ = kDays[2];
  ExpectScoresOfTheTrainedModel(2, "");
  serve_->Signal(SIGTERM);
  serve_->WaitForExit(kClientTimeout);
}

TEST_F(ServeTest, BadFlagsAndAFolderWithoutAClosedDayStopItNamingWhy) {
  const std::vector<std::string> flags = {kBin + "/granary_serve", "--job=" + root_ + "/job.pbtxt",
                                          "--cluster_config=" + root_ + "/cluster.pbtxt",
                                          "--model_dir=" + root_ + "/model"};
  struct Case {
    std::string flag;
    std::string error;
  };
  for (const Case& bad : std::vector<Case>{
           {"--poll_seconds=0", "--poll_seconds must be > 0"},
           {"--max_candidates=0", "--max_candidates, --max_body_bytes, --threads >= 1"},
           {"--port=1", "no verified base to serve in " + root_ + "/model"},
           {"--tables=disk", "--tables is 'disk': 'memory' or 'rocksdb'"},
           {"--base_block_cache_mb=0", "--base_block_cache_mb must be >= 1"}}) {
    std::vector<std::string> argv = flags;
    argv.push_back(bad.flag);
    absl::StatusOr<ChildProcess> serve = ChildProcess::Start(argv, root_ + "/bad.log");
    ASSERT_TRUE(serve.ok()) << serve.status();
    EXPECT_EQ(serve->WaitForExit(kClientTimeout), 1) << bad.flag;
    EXPECT_TRUE(absl::StrContains(serve->ReadLog(), bad.error)) << serve->ReadLog();
  }
}

const std::string kTwoTowerJobConfig = JobConfig("IGNORED", R"(
  embedding_dim: 4
  two_tower {
    retrieval { user_id_column: "user" item_id_column: "item" temperature: 0.1 }
    user_tower { fields: ["user"] mlp: [8, 4] }
    item_tower { fields: ["item"] mlp: [8, 4] }
    loss: IN_BATCH_SOFTMAX
  }
  tasks { name: "click" head: BINARY label_column: "click" }
)");

TEST_F(ServeTest, TopKOfATwoTowerModelIsTheExactSearchOverItsExportedVectors) {
  std::ofstream(root_ + "/job.pbtxt") << kTwoTowerJobConfig;
  RunDay(kDays[0], {"--cold_start"});
  ASSERT_NO_FATAL_FAILURE(StartServe());

  std::string users_file, items_file;
  for (const auto& entry : fs::recursive_directory_iterator(root_ + "/model/runs/" + kDays[0])) {
    if (entry.path().filename() == "user_vectors.vec") users_file = entry.path().string();
    if (entry.path().filename() == "item_vectors.vec") items_file = entry.path().string();
  }
  absl::StatusOr<VectorSet> users = ReadVectorFile(users_file);
  absl::StatusOr<VectorSet> items = ReadVectorFile(items_file);
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->keys.size(), static_cast<size_t>(kItemsPerDay));
  const int dim = static_cast<int>(items->header.dim());
  constexpr int kTop = 5;
  for (int user = 0; user < kUsers; ++user) {
    // The expected answer: the user's exported vector against every exported item vector.
    const uint64_t key = FeatureKey(FieldSeed("user"), std::to_string(user));
    const auto found = std::find(users->keys.begin(), users->keys.end(), key);
    ASSERT_NE(found, users->keys.end()) << "user " << user;
    const float* vector = users->values.data() + (found - users->keys.begin()) * dim;
    std::vector<std::pair<double, size_t>> expected;
    for (size_t i = 0; i < items->keys.size(); ++i) {
      double dot = 0;
      for (int d = 0; d < dim; ++d) dot += vector[d] * items->values[i * dim + d];
      expected.emplace_back(-dot, i);
    }
    std::sort(expected.begin(), expected.end());

    std::string json;
    ASSERT_EQ(
        Request("POST", "/topk",
                absl::StrCat(R"({"user": {"user": ")", user, R"("}, "k": )", kTop, "}"), &json),
        200)
        << json;
    proto::TopKResponse response;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &response).ok()) << json;
    EXPECT_EQ(response.version().base_day(), kDays[0]);
    EXPECT_EQ(response.vectors(), items_file);
    ASSERT_EQ(response.items_size(), kTop) << json;
    for (int i = 0; i < kTop; ++i) {
      EXPECT_NEAR(response.items(i).score(), -expected[i].first, kTolerance)
          << "user " << user << " rank " << i;
      // Ranks of (near-)equal scores may swap; the keys must agree where scores differ.
      if (i + 1 < kTop && -expected[i].first - -expected[i + 1].first > kTolerance &&
          (i == 0 || -expected[i - 1].first - -expected[i].first > kTolerance)) {
        EXPECT_EQ(response.items(i).key(), items->keys[expected[i].second])
            << "user " << user << " rank " << i;
      }
    }
  }
  std::string json;
  EXPECT_EQ(Request("POST", "/topk", R"({"user": {"user": "1"}, "k": 0})", &json), 400);
  EXPECT_TRUE(absl::StrContains(json, "k is 0, not in [1, --max_candidates=10000]")) << json;
  // New-item popularity is ATNN's: a two-tower model refuses it, naming why.
  EXPECT_EQ(Request("POST", "/popularity", R"({"candidates": [{"item": "3"}]})", &json), 400);
  EXPECT_TRUE(absl::StrContains(json, "(two_tower) predicts no new-item popularity")) << json;
}

}  // namespace
}  // namespace granary
