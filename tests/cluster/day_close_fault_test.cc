// Fault tests of the day close (scheduler/day_close.h) through launch/daily.sh: the scheduler
// killed (SIGKILL) right after each step of the close, a server killed on receiving each
// order of the close (SHRINK, EXPORT_DELTA, the close's CHECKPOINT), and a publish that fails; then
// the day is run again. The re-run must close the day exactly once: base(day 1) + delta(day 2) ==
// base(day 2) row for row, the delta holds the same keys and tombstones as a clean close's, and the
// show counts of base(day 2) equal a clean close's (decayed once; with show_decay 0.5 and
// min_decayed_count 1.5, a second Shrink would evict the ids first seen on day 2).
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/delta_file.h"
#include "gtest/gtest.h"
#include "ps/table_catalog.h"
#include "tests/testing/child_process.h"
#include "tests/testing/daily_model.h"
#include "tests/testing/served_rows.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

using daily_model::IdKey;
using daily_model::kDrift;
using daily_model::kIdsPerDay;

constexpr int kServers = 2;
const std::vector<std::string> kDays = {"20261101", "20261102"};

// Each Shrink halves the show counts and evicts rows under 1.5: an id pushed 4 times on day 2
// only keeps 2 after one Shrink and would be evicted by a second.
const std::string kClusterConfig =
    daily_model::ClusterConfig("ttl_days: 30 show_decay: 0.5 min_decayed_count: 1.5");

// A base's "emb" rows: values and show counts by key.
struct BaseRows {
  ServedRows values;
  std::map<uint64_t, float> shows;
};

// A day's delta files: the keys of their "emb" rows and tombstones.
struct DeltaKeys {
  std::set<uint64_t> rows, tombstones;
  bool operator==(const DeltaKeys& other) const {
    return rows == other.rows && tombstones == other.tombstones;
  }
};

class DayCloseFaultTest : public ::testing::TestWithParam<std::vector<std::string>> {
 protected:
  // Day 1 is closed once, cleanly; a clean close of day 2 is the reference.
  static void SetUpTestSuite() {
    const std::string dir = MakeTempDir("granary-dayclose");
    ASSERT_FALSE(dir.empty());
    root_ = new std::string(fs::canonical(dir).string());
    daily_model::WriteModelFiles(*root_, kClusterConfig, kDays);
    std::string log;
    ASSERT_EQ(RunDay(*root_ + "/day1", kDays[0], {"--cold_start"}, &log), 0) << log;
    fs::copy(*root_ + "/day1", *root_ + "/clean", fs::copy_options::recursive);
    ASSERT_EQ(RunDay(*root_ + "/clean", kDays[1], {}, &log), 0) << log;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  // Runs daily.sh for `day` into `model_dir`; returns its exit code, *log its output.
  static int RunDay(const std::string& model_dir, const std::string& day,
                    const std::vector<std::string>& more, std::string* log) {
    daily_model::DayRun run;
    run.root = *root_;
    run.model_dir = model_dir;
    run.servers = kServers;
    run.workers = 1;
    // Nodes notice a killed peer sooner.
    run.node_flags = {"--heartbeat_timeout=2"};
    return daily_model::RunDay(run, day, more, log);
  }

  // Reads every server's shard of a base by restoring it into a scratch store.
  static BaseRows ReadBase(const std::string& base) {
    proto::ClusterConfig config;
    EXPECT_TRUE(ParseTextProto(kClusterConfig, "cluster", &config).ok());
    BaseRows rows;
    for (int rank = 0; rank < kServers; ++rank) {
      TableCatalogOptions options;
      options.path = absl::StrCat(*root_, "/scratch");
      options.restore_from = absl::StrCat(base, "/server-", rank);
      options.cache_bytes = 1 << 20;
      absl::StatusOr<std::unique_ptr<TableCatalog>> catalog = TableCatalog::Open(config, options);
      EXPECT_TRUE(catalog.ok()) << catalog.status();
      if (!catalog.ok()) return rows;
      EmbeddingTable* table = (*catalog)->Find("emb");
      const RowLayout& layout = table->layout();
      EXPECT_TRUE(table
                      ->ForEachStoredRow([&](uint64_t key, const char* record) {
                        const float* values = layout.values(record);
                        rows.values[key].assign(values, values + layout.dim());
                        rows.shows[key] = layout.meta(record)->show_count;
                        return absl::OkStatus();
                      })
                      .ok());
    }
    fs::remove_all(absl::StrCat(*root_, "/scratch"));
    return rows;
  }

  static DeltaKeys ReadDeltaKeys(const std::string& day_dir) {
    DeltaKeys keys;
    int files = 0;
    for (const auto& entry : fs::directory_iterator(day_dir)) {
      ++files;
      absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(entry.path());
      EXPECT_TRUE(reader.ok()) << reader.status();
      if (!reader.ok()) return keys;
      DeltaTableBlock block;
      absl::StatusOr<bool> more;
      while ((more = (*reader)->Next(&block)).ok() && *more) {
        if (block.table != "emb") continue;
        keys.rows.insert(block.keys.begin(), block.keys.end());
        keys.tombstones.insert(block.tombstones.begin(), block.tombstones.end());
      }
      EXPECT_TRUE(more.ok()) << more.status();
    }
    EXPECT_EQ(files, kServers) << day_dir;
    return keys;
  }

  // The close report's per-table rows kept and evicted.
  static std::string TablesOf(const std::string& close_report) {
    const std::string text = ReadFile(close_report);
    const size_t begin = text.find("\"tables\"");
    return text.substr(begin, text.find("\"delta\"") - begin);
  }

  // Whether a log file of a run under `runs` holds `text`.
  static bool RunLogsHold(const std::string& runs, const std::string& text) {
    for (const auto& entry : fs::recursive_directory_iterator(runs)) {
      if (entry.path().extension() == ".log" &&
          absl::StrContains(ReadFile(entry.path().string()), text)) {
        return true;
      }
    }
    return false;
  }

  static std::string* root_;
};

std::string* DayCloseFaultTest::root_ = nullptr;

TEST_P(DayCloseFaultTest, ARerunAfterTheFaultClosesTheDayExactlyOnce) {
  const std::vector<std::string>& fault = GetParam();
  const std::string name =
      absl::StrCat("model-", std::hash<std::string>()(absl::StrJoin(fault, " ")));
  const std::string model = *root_ + "/" + name;
  fs::copy(*root_ + "/day1", model, fs::copy_options::recursive);
  std::string log;
  EXPECT_NE(RunDay(model, kDays[1], fault, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(log, "day 20261102 failed")) << log;
  EXPECT_TRUE(RunLogsHold(model + "/runs/" + kDays[1], "fault injection (--"))
      << "the fault did not happen";
  ASSERT_EQ(RunDay(model, kDays[1], {}, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(log, "resuming 20261102 from its checkpoints")) << log;
  EXPECT_TRUE(absl::StrContains(log, "day 20261102 closed")) << log;
  // Failed after the close's checkpoint but before its move to the base, the re-run restores
  // that checkpoint: its servers answer SHRINK with the first Shrink's counts. Otherwise it
  // restores one taken before the close.
  const bool restores_the_close = fault[0] == "--scheduler_flag=--fault_in_close=checkpoint" ||
                                  fault[0] == "--scheduler_flag=--fault_in_close=publish_error";
  EXPECT_EQ(RunLogsHold(model + "/runs/" + kDays[1], "already shrunk"), restores_the_close);
  EXPECT_TRUE(absl::StrContains(
      ReadFile(model + "/reports/" + kDays[1] + ".close.json"),
      absl::StrCat("\"shrunk_by_an_earlier_run\": ", restores_the_close ? "true" : "false")));

  // base(day 1) + delta(day 2) == base(day 2), row for row.
  const BaseRows day1 = ReadBase(model + "/bases/" + kDays[0]);
  const BaseRows day2 = ReadBase(model + "/bases/" + kDays[1]);
  ServedRows served = day1.values;
  absl::StatusOr<int> files = ApplyDayDeltas(model + "/deltas/" + kDays[1], "emb", &served);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, kServers);
  EXPECT_TRUE(served == day2.values);
  EXPECT_EQ(served.size(), day2.values.size());

  // The same rows and show counts as a clean close: one decay, one eviction. Ids 0..19 (only
  // day 1) were evicted; ids 40..59 (only day 2) kept 2 of their 4 shows.
  const BaseRows clean = ReadBase(*root_ + "/clean/bases/" + kDays[1]);
  EXPECT_TRUE(day2.shows == clean.shows);
  for (int id = 0; id < kDrift + kIdsPerDay; ++id) {
    EXPECT_EQ(day2.shows.count(IdKey(id)), id < kDrift ? 0u : 1u) << "id " << id;
  }
  EXPECT_TRUE(ReadDeltaKeys(model + "/deltas/" + kDays[1]) ==
              ReadDeltaKeys(*root_ + "/clean/deltas/" + kDays[1]));
  const std::string report = model + "/reports/" + kDays[1] + ".close.json";
  EXPECT_EQ(TablesOf(report), TablesOf(*root_ + "/clean/reports/" + kDays[1] + ".close.json"));
  EXPECT_TRUE(fs::exists(model + "/reports/" + kDays[1] + ".json"));
  EXPECT_FALSE(fs::exists(model + "/bases/." + kDays[1] + ".replaced"));

  // Closed: a further run changes nothing.
  ASSERT_EQ(RunDay(model, kDays[1], {}, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(log, "day 20261102 is already closed")) << log;
}

// daily.sh verifies a close before it counts the day closed: a delta file cut short (or a
// base without its manifest) makes it close the day again, and the next day refuse to start.
TEST_F(DayCloseFaultTest, AClosedDayThatDoesNotVerifyIsClosedAgain) {
  const std::string model = *root_ + "/unverified";
  fs::copy(*root_ + "/clean", model, fs::copy_options::recursive);
  const std::string delta = model + "/deltas/" + kDays[1] + "/server-1.delta";
  fs::resize_file(delta, fs::file_size(delta) - 1);
  std::string log;
  // The next day does not start from it.
  const std::string day3 = "20261103";
  fs::create_directories(*root_ + "/data/" + day3);
  fs::copy_file(*root_ + "/data/" + kDays[1] + "/part-00000",
                *root_ + "/data/" + day3 + "/part-00000", fs::copy_options::overwrite_existing);
  EXPECT_NE(RunDay(model, day3, {}, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(
      log, "the previous day 20261102 is not closed (delta file " + delta + " has "))
      << log;
  EXPECT_FALSE(fs::exists(model + "/runs/" + day3));
  ASSERT_EQ(RunDay(model, kDays[1], {}, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(log, "day 20261102 is not closed (delta file " + delta + " has "))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "day 20261102 closed")) << log;
  const BaseRows day1 = ReadBase(model + "/bases/" + kDays[0]);
  ServedRows served = day1.values;
  ASSERT_TRUE(ApplyDayDeltas(model + "/deltas/" + kDays[1], "emb", &served).ok());
  EXPECT_TRUE(served == ReadBase(model + "/bases/" + kDays[1]).values);

  fs::remove(model + "/bases/" + kDays[1] + "/MANIFEST");
  ASSERT_EQ(RunDay(model, kDays[1], {}, &log), 0) << log;
  EXPECT_TRUE(absl::StrContains(log, "day 20261102 is not closed (base " + model + "/bases/" +
                                         kDays[1] + " has no MANIFEST)"))
      << log;
  EXPECT_TRUE(fs::exists(model + "/bases/" + kDays[1] + "/MANIFEST"));
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, DayCloseFaultTest,
    ::testing::Values(std::vector<std::string>{"--scheduler_flag=--fault_in_close=shrink"},
                      std::vector<std::string>{"--scheduler_flag=--fault_in_close=export"},
                      std::vector<std::string>{"--scheduler_flag=--fault_in_close=checkpoint"},
                      std::vector<std::string>{"--scheduler_flag=--fault_in_close=publish"},
                      std::vector<std::string>{"--scheduler_flag=--fault_in_close=report"},
                      std::vector<std::string>{"--scheduler_flag=--fault_in_close=publish_error"},
                      std::vector<std::string>{"--server_flag=--fault_on_order=SHRINK"},
                      std::vector<std::string>{"--server_flag=--fault_on_order=EXPORT_DELTA"},
                      // The close's checkpoint: the first after the SHRINK.
                      std::vector<std::string>{
                          "--server_flag=--fault_on_order=SHRINK,CHECKPOINT"}));

}  // namespace
}  // namespace granary
