#include "worker/serve/delta_poller.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/delta_file.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 2;
constexpr uint64_t kKey = 1;
const absl::Duration kPoll = absl::Milliseconds(20);
const absl::Duration kWait = absl::Seconds(10);

// Closes `day` of a one-server model folder: its delta (kKey = {value, value}), its base and
// its close report, written last. `truncate` drops the delta's last bytes (report to match).
void CloseDay(const std::string& model_dir, const std::string& day, float value, bool truncate) {
  const std::string delta = absl::StrCat(model_dir, "/deltas/", day, "/server-0.delta");
  fs::create_directories(fs::path(delta).parent_path());
  absl::StatusOr<std::unique_ptr<DeltaWriter>> writer = DeltaWriter::Create(delta, {});
  ASSERT_TRUE(writer.ok());
  const float row[kDim] = {value, value};
  ASSERT_TRUE((*writer)->AddRow("emb", kDim, kKey, row).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  if (truncate) fs::resize_file(delta, fs::file_size(delta) - 1);
  fs::create_directories(absl::StrCat(model_dir, "/bases/", day, "/server-0"));
  std::ofstream(absl::StrCat(model_dir, "/bases/", day, "/MANIFEST")) << "id: 1\n";
  fs::create_directories(model_dir + "/reports");
  // Atomically, as the scheduler writes it: the poller may look at any moment.
  const absl::Status written = WriteFileAtomically(
      absl::StrCat(model_dir, "/reports/", day, ".close.json"),
      absl::StrFormat(
          R"({"base_manifest_id": 1, "delta": {"files": [{"path": "x/server-0.delta", "bytes": %d}]}})",
          fs::file_size(delta)));
  ASSERT_TRUE(written.ok()) << written;
}

TEST(DeltaPollerTest, AppliesNewDaysInTheBackgroundAndKeepsTheErrorOfARefusedOne) {
  const std::string root = MakeTempDir("poller");
  ASSERT_FALSE(root.empty());
  const std::string model_dir = root + "/model";
  CloseDay(model_dir, "20261101", 1, false);
  ModelBundleOptions options;
  options.model_dir = model_dir;
  options.scratch_dir = root + "/scratch";
  options.export_base_shard = [&](const std::string& shard, int, const std::string& path) {
    // The base of day 1 is its delta (a cold start).
    fs::copy_file(fs::path(shard).parent_path().parent_path().parent_path() /
                      "deltas/20261101/server-0.delta",
                  path, fs::copy_options::overwrite_existing);
    return absl::OkStatus();
  };
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  {
    DeltaPoller poller(bundle->get(), kPoll);
    CloseDay(model_dir, "20261102", 2, false);
    EXPECT_TRUE(
        WaitUntil([&] { return (*bundle)->Current()->version().delta_day == "20261102"; }, kWait));
    EXPECT_EQ((*bundle)->Current()->table("emb")->Find(kKey)[0], 2);
    EXPECT_EQ(poller.last_error(), "");

    CloseDay(model_dir, "20261103", 3, /*truncate=*/true);
    EXPECT_TRUE(WaitUntil(
        [&] { return absl::StrContains(poller.last_error(), "20261103/server-0.delta"); }, kWait))
        << poller.last_error();
    EXPECT_EQ((*bundle)->Current()->version().delta_day, "20261102");

    // Closed again whole, the day is picked up and the error clears.
    CloseDay(model_dir, "20261103", 3, false);
    EXPECT_TRUE(
        WaitUntil([&] { return (*bundle)->Current()->version().delta_day == "20261103"; }, kWait));
    EXPECT_TRUE(WaitUntil([&] { return poller.last_error().empty(); }, kWait));
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace granary
