// Tests of launch/daily.sh: three consecutive days of generated data with drifting ids, each
// trained by a real cluster on 127.0.0.1 (launch/local.sh) from the base the day before closed.
// Checks the bases, that base of day 1 + deltas of days 2 and 3 = base of day 3 (read back by
// restoring it), the eviction of ids not seen for more than ttl_days, the day report, the
// error for a missing previous base and that re-running a closed day changes nothing.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/daily_model.h"
#include "tests/testing/in_process_cluster.h"
#include "tests/testing/served_rows.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

using daily_model::IdKey;
using daily_model::kDrift;
using daily_model::kIdsPerDay;
using daily_model::kJobConfig;

const std::string kBin = GRANARY_BINARY_DIR;
constexpr int kServers = 2;
const std::vector<std::string> kDays = {"20261101", "20261102", "20261103"};

// Initial rows are a function of the key and the seed: a key without a row reads as its initial
// value. ttl of one day: on day 3, the ids last trained on day 1 are evicted.
const std::string kClusterConfig = daily_model::ClusterConfig("ttl_days: 1");

class DailyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = MakeTempDir("granary-daily");
    ASSERT_FALSE(dir.empty());
    root_ = fs::canonical(dir).string();
    model_dir_ = root_ + "/model";
    daily_model::WriteModelFiles(root_, kClusterConfig, kDays);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Runs daily.sh for `day` with `more` arguments; returns its exit code, *log its output.
  int RunDay(const std::string& day, const std::vector<std::string>& more, std::string* log) {
    daily_model::DayRun run;
    run.root = root_;
    run.model_dir = model_dir_;
    run.servers = kServers;
    run.workers = 2;
    return daily_model::RunDay(run, day, more, log);
  }

  // Applies one day's delta files (every server's) to *rows.
  void ApplyDeltas(const std::string& day, ServedRows* rows) {
    absl::StatusOr<int> files = ApplyDayDeltas(model_dir_ + "/deltas/" + day, "emb", rows);
    ASSERT_TRUE(files.ok()) << files.status();
    EXPECT_EQ(*files, kServers) << day;
  }

  // The "emb" values of ids [0, end), 2 per id, in a cluster that restores the base `day`
  // (none if empty).
  std::vector<float> Pull(const std::string& day, int end) {
    InProcessClusterOptions options;
    options.num_servers = kServers;
    options.num_workers = 1;
    EXPECT_TRUE(ParseTextProto(kClusterConfig, "cluster", &options.config).ok());
    options.data_dir = absl::StrCat(root_, "/read", day, "/data");
    options.checkpoint_dir = absl::StrCat(root_, "/read", day, "/checkpoints");
    options.day = "20991231";
    if (!day.empty()) options.base_dir = model_dir_ + "/bases/" + day;
    InProcessCluster cluster(options);
    EXPECT_TRUE(cluster.Start().ok());
    std::vector<uint64_t> keys;
    for (int id = 0; id < end; ++id) keys.push_back(IdKey(id));
    std::vector<float> values;
    absl::Status status =
        cluster.worker(0).Wait(cluster.worker(0).Pull("emb", keys, &values, PullMode::kEvaluate));
    EXPECT_TRUE(status.ok()) << status;
    return values;
  }

  // Every file under the model folder with its size and modification time.
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> Snapshot() const {
    std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> files;
    for (const auto& entry : fs::recursive_directory_iterator(model_dir_)) {
      files[entry.path().string()] = {entry.is_regular_file() ? entry.file_size() : 0,
                                      entry.last_write_time()};
    }
    return files;
  }

  std::string root_;
  std::string model_dir_;
};

TEST_F(DailyTest, ThreeDaysOfDriftingIdsChainBasesAndDeltasAndEvictStaleIds) {
  std::string log;
  ASSERT_EQ(RunDay(kDays[0], {"--cold_start"}, &log), 0) << log;
  ASSERT_EQ(RunDay(kDays[1], {}, &log), 0) << log;
  ASSERT_EQ(RunDay(kDays[2], {}, &log), 0) << log;
  for (const std::string& day : kDays) {
    EXPECT_TRUE(fs::exists(model_dir_ + "/bases/" + day + "/MANIFEST")) << day;
  }

  // Day 1's delta holds all of day 1; days 2 and 3's deltas (tombstones included) hold what
  // changed since. Ids 0..19 were trained on day 1 only: evicted on day 3 (ttl 1 day).
  const int all_ids = kDrift * 2 + kIdsPerDay;
  ServedRows served;
  ApplyDeltas(kDays[0], &served);
  EXPECT_EQ(served.size(), static_cast<size_t>(kIdsPerDay));
  ApplyDeltas(kDays[1], &served);
  ApplyDeltas(kDays[2], &served);
  for (int id = 0; id < all_ids; ++id) {
    EXPECT_EQ(served.count(IdKey(id)), id < kDrift ? 0u : 1u) << "id " << id;
  }
  // Base of day 3 == what the deltas add up to; evicted rows read as new (initial) rows.
  const std::vector<float> initial = Pull("", all_ids);
  const std::vector<float> day3 = Pull(kDays[2], all_ids);
  ASSERT_EQ(day3.size(), initial.size());
  for (int id = 0; id < all_ids; ++id) {
    auto row = served.find(IdKey(id));
    const std::vector<float> expected =
        row != served.end()
            ? row->second
            : std::vector<float>(initial.begin() + 2 * id, initial.begin() + 2 * id + 2);
    EXPECT_EQ(std::vector<float>(day3.begin() + 2 * id, day3.begin() + 2 * id + 2), expected)
        << "id " << id;
  }

  // The day report: evaluation before and after training, rows, evictions, deltas, samples.
  const std::string report = ReadFile(model_dir_ + "/reports/" + kDays[2] + ".json");
  for (const std::string& field : std::vector<std::string>{
           "\"day\": \"20261103\"", "\"samples\": 160", "\"workers\": 2", "\"epochs\": 1",
           // From the scheduler's records: every sample trained once, no worker lost.
           "\"samples_trained\": 160", "\"requeued_chunks\": 0", "\"partial_batches\": 0",
           "\"eval_before_training\": {", "\"eval_after_training\": {", "\"count\": 160",
           "\"auc\": ", "\"rows_evicted\": 20", "\"table\": \"emb\",\n      \"rows_kept\": 60",
           "\"tombstones\": 20",
           // 20 new ids a day: rows before Shrink (60 + 20) minus the 60 day 2 kept.
           "\"rows_admitted\": 20",
           "\"duration_seconds\": ", "\"previous_base\": \"" + model_dir_ + "/bases/20261102\""}) {
    EXPECT_TRUE(absl::StrContains(report, field)) << field << " not in\n" << report;
  }
  EXPECT_TRUE(absl::StrContains(ReadFile(model_dir_ + "/reports/" + kDays[0] + ".json"),
                                "\"previous_base\": null"));

  // A day closed before its report was written (daily.sh killed) gets the report on a re-run,
  // from the run that closed it, without training again.
  const std::string day3_report = model_dir_ + "/reports/" + kDays[2] + ".json";
  fs::remove(day3_report);
  ASSERT_EQ(RunDay(kDays[2], {}, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(log, "day 20261103 is closed but has no report")) << log;
  EXPECT_FALSE(absl::StrContains(log, "training 20261103")) << log;
  const std::string rewritten = ReadFile(day3_report);
  EXPECT_TRUE(absl::StrContains(rewritten, "\"duration_seconds\": null")) << rewritten;
  EXPECT_EQ(rewritten.substr(rewritten.find("\"close_seconds\"")),
            report.substr(report.find("\"close_seconds\"")));

  // Re-running closed days changes nothing.
  const auto before = Snapshot();
  for (const std::string& day : {kDays[1], kDays[2]}) {
    ASSERT_EQ(RunDay(day, {}, &log), 0) << log;
    EXPECT_TRUE(absl::StrContains(log, "day " + day + " is already closed")) << log;
  }
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(DailyTest, ForceRetrainsAClosedDayFromThePreviousBase) {
  std::string log;
  ASSERT_EQ(RunDay(kDays[0], {"--cold_start"}, &log), 0) << log;
  ASSERT_EQ(RunDay(kDays[1], {}, &log), 0) << log;
  const std::string report = model_dir_ + "/reports/" + kDays[1] + ".json";
  const std::string first = ReadFile(report);
  ASSERT_EQ(RunDay(kDays[1], {"--force"}, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(log, "--force: retraining 20261102 from the base of 20261101"))
      << log;
  const std::string second = ReadFile(report);
  EXPECT_NE(second, first);  // another run folder and duration
  // The retrained day's delta still chains onto day 1's.
  ServedRows served;
  ApplyDeltas(kDays[0], &served);
  ApplyDeltas(kDays[1], &served);
  const int all_ids = kDrift + kIdsPerDay;
  const std::vector<float> day2 = Pull(kDays[1], all_ids);
  ASSERT_EQ(day2.size(), static_cast<size_t>(2 * all_ids));
  for (int id = 0; id < all_ids; ++id) {
    ASSERT_EQ(served.count(IdKey(id)), 1u) << "id " << id;
    EXPECT_EQ(std::vector<float>(day2.begin() + 2 * id, day2.begin() + 2 * id + 2),
              served[IdKey(id)])
        << "id " << id;
  }
}

TEST_F(DailyTest, FailedDayLeavesNoBaseAndSucceedsWhenRunAgain) {
  // The job fails on every worker after the cluster formed: evaluating before training needs
  // eval files, and this job has none.
  std::string job = kJobConfig;
  const std::string eval = "  eval_files: \"part-*\"\n";
  job.erase(job.find(eval), eval.size());
  std::ofstream(root_ + "/no_eval.pbtxt") << job;
  std::string log;
  EXPECT_NE(
      RunDay(kDays[0], {"--cold_start", "--worker_flags=--job_config=" + root_ + "/no_eval.pbtxt"},
             &log),
      0);
  EXPECT_TRUE(absl::StrContains(log, "evaluation before training needs eval files")) << log;
  EXPECT_TRUE(
      absl::StrContains(log, "day 20261101 failed; logs in " + model_dir_ + "/runs/20261101/"))
      << log;
  // Workers report the failure, so the scheduler does not close the day and fails the run.
  EXPECT_TRUE(absl::StrContains(log, "failed its job: ")) << log;
  EXPECT_FALSE(fs::exists(model_dir_ + "/bases/" + kDays[0]));
  EXPECT_FALSE(fs::exists(model_dir_ + "/deltas/" + kDays[0]));
  EXPECT_FALSE(fs::exists(model_dir_ + "/reports/" + kDays[0] + ".json"));
  EXPECT_FALSE(fs::exists(model_dir_ + "/reports/" + kDays[0] + ".close.json"));

  ASSERT_EQ(RunDay(kDays[0], {"--cold_start"}, &log), 0) << log;
  EXPECT_TRUE(fs::exists(model_dir_ + "/bases/" + kDays[0] + "/MANIFEST"));
  EXPECT_TRUE(fs::exists(model_dir_ + "/reports/" + kDays[0] + ".json"));
}

// Every path of a day (model, runs, bases, data, configs, bin) holds a space and a quote: each
// reaches the roles as one flag, and the files land where named.
TEST_F(DailyTest, PathsWithSpacesAndQuotesReachTheRolesIntact) {
  model_dir_ = root_ + "/it's a model";
  const std::string folder = root_ + "/in put's";
  fs::create_directories(folder);
  fs::rename(root_ + "/data", folder + "/da ta");
  fs::copy_file(root_ + "/job.pbtxt", folder + "/job's config.pbtxt");
  fs::copy_file(root_ + "/cluster.pbtxt", folder + "/cluster config.pbtxt");
  fs::create_directory_symlink(kBin, root_ + "/bin's dir");
  const std::vector<std::string> paths = {
      "--data_root=" + folder + "/da ta", "--config=" + folder + "/job's config.pbtxt",
      "--cluster_config=" + folder + "/cluster config.pbtxt", "--bin_dir=" + root_ + "/bin's dir"};
  std::vector<std::string> first = paths;
  first.push_back("--cold_start");
  std::string log;
  ASSERT_EQ(RunDay(kDays[0], first, &log), 0) << log;
  // Day 2 starts from day 1's base: --base_dir has the model folder's space and quote too.
  ASSERT_EQ(RunDay(kDays[1], paths, &log), 0) << log;
  for (const std::string& day : {kDays[0], kDays[1]}) {
    EXPECT_TRUE(fs::exists(model_dir_ + "/bases/" + day + "/MANIFEST")) << day;
    EXPECT_TRUE(fs::exists(model_dir_ + "/reports/" + day + ".json")) << day;
    EXPECT_TRUE(fs::exists(model_dir_ + "/deltas/" + day)) << day;
    int metrics = 0;
    for (const auto& run : fs::directory_iterator(model_dir_ + "/runs/" + day)) {
      metrics += fs::exists(run.path() / "metrics.jsonl") ? 1 : 0;
    }
    EXPECT_EQ(metrics, 1) << day;
  }
  EXPECT_TRUE(absl::StrContains(ReadFile(model_dir_ + "/reports/" + kDays[1] + ".json"),
                                model_dir_ + "/bases/" + kDays[0]));
}

TEST_F(DailyTest, MissingPreviousBaseIsAnErrorNamingIt) {
  std::string log;
  EXPECT_NE(RunDay(kDays[1], {}, &log), 0);
  EXPECT_TRUE(absl::StrContains(log, "no base of the previous day 20261101: '" + model_dir_ +
                                         "/bases/20261101' does not exist"))
      << log;
  EXPECT_FALSE(fs::exists(model_dir_ + "/bases/" + kDays[1]));
}

TEST_F(DailyTest, BadArgumentsAreNamed) {
  std::string log;
  EXPECT_NE(RunDay("20261131", {}, &log), 0);
  EXPECT_TRUE(absl::StrContains(log, "--date '20261131' is not a date YYYYMMDD")) << log;
  EXPECT_NE(RunDay("20261104", {"--cold_start"}, &log), 0);
  EXPECT_TRUE(absl::StrContains(
      log, "no input for 20261104: nothing matches '" + root_ + "/data/20261104/part-*'"))
      << log;
}

}  // namespace
}  // namespace granary
