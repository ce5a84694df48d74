// Daily training on an in-process cluster: three consecutive days with drifting ids, each
// starting from the base the previous day closed. Checks the bases, the deltas (base of day 1
// + deltas of days 2 and 3 = base of day 3, row by row, tombstones included) and eviction.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "tests/testing/in_process_cluster.h"
#include "tests/testing/served_rows.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(30);

std::vector<uint64_t> Keys(int begin, int end) {
  std::vector<uint64_t> keys;
  for (int i = begin; i < end; ++i) keys.push_back(FeatureKey(FieldSeed("id"), std::to_string(i)));
  return keys;
}

using Model = ServedRows;

// Applies the delta files of one day (every server's) to *model.
void ApplyDeltas(const std::string& day_dir, Model* model) {
  absl::StatusOr<int> files = ApplyDayDeltas(day_dir, "emb", model);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, 2) << day_dir;  // one per server
}

class DayCloseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("granary-days");
    ASSERT_FALSE(root_.empty());
    model_dir_ = root_ + "/model";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  InProcessClusterOptions Options(const std::string& day, const std::string& base) {
    InProcessClusterOptions options;
    options.num_servers = 2;
    options.num_workers = 1;
    options.config = SgdTablesConfig({{"emb", 2}}, 1.0f);
    options.config.mutable_tables(0)->mutable_eviction()->set_ttl_days(1);
    options.data_dir = absl::StrCat(root_, "/run-", day, "/data");
    options.checkpoint_dir = absl::StrCat(root_, "/run-", day, "/checkpoints");
    options.day = day;
    options.base_dir = base;
    options.close_day_into = model_dir_;
    return options;
  }

  // Trains day `day` from `base`: a gradient of 1 on every key of `keys`, then closes it.
  void RunDay(const std::string& day, const std::string& base, const std::vector<uint64_t>& keys) {
    InProcessCluster cluster(Options(day, base));
    ASSERT_TRUE(cluster.Start().ok());
    std::vector<float> grads(keys.size() * 2, 1.0f);
    ASSERT_TRUE(cluster.worker(0).Wait(cluster.worker(0).Push("emb", keys, grads)).ok());
    cluster.worker_client(0).ReportJobDone();
    absl::Status closed = cluster.WaitForSchedulerExit(kTimeout);
    ASSERT_TRUE(closed.ok()) << closed;
  }

  // Every row of a closed day's base, read back through a cluster that restores it.
  Model ReadBase(const std::string& day, const std::vector<uint64_t>& keys) {
    InProcessClusterOptions options = Options("20991231", Base(day));
    options.close_day_into.clear();
    options.checkpoint_dir = absl::StrCat(root_, "/read-", day, "/checkpoints");
    options.data_dir = absl::StrCat(root_, "/read-", day, "/data");
    InProcessCluster cluster(options);
    EXPECT_TRUE(cluster.Start().ok());
    std::vector<float> rows;
    absl::Status status =
        cluster.worker(0).Wait(cluster.worker(0).Pull("emb", keys, &rows, PullMode::kEvaluate));
    EXPECT_TRUE(status.ok()) << status;
    Model model;
    for (size_t i = 0; i < keys.size() && status.ok(); ++i) {
      // A key without a row reads as its initial value, zeros here.
      if (rows[2 * i] != 0 || rows[2 * i + 1] != 0) {
        model[keys[i]] = {rows[2 * i], rows[2 * i + 1]};
      }
    }
    return model;
  }

  std::string Base(const std::string& day) const { return model_dir_ + "/bases/" + day; }

  std::string root_;
  std::string model_dir_;
};

TEST_F(DayCloseTest, ThreeDaysOfDriftingIdsChainBasesAndDeltasAndEvictStaleRows) {
  // Ids drift: 0..99 on day 1, 50..149 on day 2, 100..199 on day 3.
  RunDay("20261101", "", Keys(0, 100));
  RunDay("20261102", Base("20261101"), Keys(50, 150));
  RunDay("20261103", Base("20261102"), Keys(100, 200));

  const std::vector<uint64_t> all = Keys(0, 200);
  Model day3 = ReadBase("20261103", all);
  // On day 3 (ttl 1 day), rows last trained on day 1 (ids 0..49) are evicted; 50..99 were
  // trained on day 2 and stay.
  std::vector<uint64_t> old_ids = Keys(0, 50);
  for (uint64_t key : old_ids) EXPECT_EQ(day3.count(key), 0u);
  EXPECT_EQ(day3.size(), 150u);
  EXPECT_EQ(day3[Keys(50, 51)[0]], (std::vector<float>{-2, -2}));    // days 1 and 2
  EXPECT_EQ(day3[Keys(120, 121)[0]], (std::vector<float>{-2, -2}));  // days 2 and 3
  EXPECT_EQ(day3[Keys(199, 200)[0]], (std::vector<float>{-1, -1}));  // day 3

  // Day 1's delta holds all of day 1; adding the next days' deltas gives day 3's base.
  Model served;
  ApplyDeltas(model_dir_ + "/deltas/20261101", &served);
  EXPECT_EQ(served.size(), 100u);
  ApplyDeltas(model_dir_ + "/deltas/20261102", &served);
  ApplyDeltas(model_dir_ + "/deltas/20261103", &served);
  EXPECT_EQ(served, day3);

  std::ifstream report(model_dir_ + "/reports/20261103.close.json");
  std::stringstream text;
  text << report.rdbuf();
  EXPECT_NE(text.str().find(R"({"table": "emb", "rows_kept": 150, "rows_evicted": 50})"),
            std::string::npos)
      << text.str();
}

// A worker whose job failed must not let the day close: no base, no delta, and the run fails
// naming the worker.
TEST_F(DayCloseTest, FailedJobLeavesTheDayOpen) {
  InProcessCluster cluster(Options("20261101", ""));
  ASSERT_TRUE(cluster.Start().ok());
  cluster.worker_client(0).ReportJobDone(absl::DataLossError("input.tsv:7: too many bad lines"));
  absl::Status status = cluster.WaitForSchedulerExit(kTimeout);
  ASSERT_TRUE(absl::IsAborted(status)) << status;
  EXPECT_NE(status.message().find("worker 0"), std::string::npos) << status;
  EXPECT_NE(status.message().find("input.tsv:7: too many bad lines"), std::string::npos) << status;
  EXPECT_FALSE(std::filesystem::exists(Base("20261101")));
  EXPECT_FALSE(std::filesystem::exists(model_dir_ + "/deltas/20261101"));
}

TEST_F(DayCloseTest, MissingBaseStopsTheRunNamingIt) {
  InProcessClusterOptions options = Options("20261102", Base("20261101"));
  zmq::context_t context(1);
  SchedulerOptions scheduler_options;
  scheduler_options.checkpoint_dir = options.checkpoint_dir;
  scheduler_options.base_dir = options.base_dir;
  scheduler_options.day = options.day;
  Scheduler scheduler(&context, scheduler_options);
  absl::Status status = scheduler.Run();
  ASSERT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find(Base("20261101")), std::string::npos) << status;
}

TEST_F(DayCloseTest, MalformedDayIsRejected) {
  zmq::context_t context(1);
  SchedulerOptions options;
  options.day = "2026-11-01";
  Scheduler scheduler(&context, options);
  absl::Status status = scheduler.Run();
  ASSERT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("'2026-11-01' is not a date YYYYMMDD"), std::string::npos);
}

}  // namespace
}  // namespace granary
