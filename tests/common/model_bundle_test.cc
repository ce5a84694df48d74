#include "common/model_bundle.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/delta_file.h"
#include "common/shard_map.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 2;
constexpr uint64_t kManifestId = 7;

// One row or tombstone of a generated delta.
struct Change {
  uint64_t key;
  std::vector<float> values;  // empty: a tombstone
};

// A base shard read in place holding the rows the test gave its day's base (the parameter
// server's reader is tested in tests/ps/base_reader_test.cc).
class FakeShardRows : public BaseShardRows {
 public:
  explicit FakeShardRows(const std::vector<Change>& rows) {
    for (const Change& row : rows) rows_[row.key] = row.values;
  }
  std::vector<std::string> tables() const override { return {"emb"}; }
  int dim(const std::string& table) const override { return table == "emb" ? kDim : -1; }
  absl::Status Read(const std::string& table, absl::Span<const uint64_t> keys, float* rows,
                    bool* found) const override {
    EXPECT_EQ(table, "emb");
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = rows_.find(keys[i]);
      found[i] = it != rows_.end();
      if (found[i]) std::copy(it->second.begin(), it->second.end(), rows + i * kDim);
    }
    return absl::OkStatus();
  }

 private:
  std::map<uint64_t, std::vector<float>> rows_;
};

// A daily model folder as daily.sh leaves it, with deltas written by the real DeltaWriter and
// close reports in the scheduler's format. Bases are "exported" by writing the rows the test
// gives a day's base (the parameter server's reader is tested in tests/ps/base_export_test.cc),
// or read in place from those rows (ServedTables::kRocksDb): every test runs in both modes.
class ModelBundleTest : public ::testing::TestWithParam<ServedTables> {
 protected:
  void SetUp() override {
    options_.tables = GetParam();
    options_.open_base_shard = [this](const std::string& shard_dir,
                                      int rank) -> absl::StatusOr<std::unique_ptr<BaseShardRows>> {
      const std::string day = fs::path(shard_dir).parent_path().filename().string();
      EXPECT_EQ(rank, 0);
      return std::make_unique<FakeShardRows>(base_rows_[day]);
    };
    root_ = MakeTempDir("bundle");
    ASSERT_FALSE(root_.empty());
    model_dir_ = root_ + "/model";
    options_.model_dir = model_dir_;
    options_.scratch_dir = root_ + "/scratch";
    options_.export_base_shard = [this](const std::string& shard_dir, int rank,
                                        const std::string& delta_path) {
      const std::string day = fs::path(shard_dir).parent_path().filename().string();
      EXPECT_EQ(rank, 0);
      return WriteDelta(delta_path, base_rows_[day]);
    };
  }
  void TearDown() override { fs::remove_all(root_); }

  // A delta of server 0 with the changes of versions (since, until].
  static absl::Status WriteDelta(const std::string& path, const std::vector<Change>& changes,
                                 uint64_t since = 0, uint64_t until = 0) {
    proto::DeltaHeader header;
    header.set_since_version(since);
    header.set_until_version(until);
    absl::StatusOr<std::unique_ptr<DeltaWriter>> writer = DeltaWriter::Create(path, header);
    if (!writer.ok()) return writer.status();
    for (const Change& change : changes) {
      absl::Status status = change.values.empty()
                                ? (*writer)->AddTombstone("emb", kDim, change.key)
                                : (*writer)->AddRow("emb", kDim, change.key, change.values.data());
      if (!status.ok()) return status;
    }
    return (*writer)->Finish();
  }

  // Closes `day`: its delta (one server), its base (rows `base`; none if nullopt, as when the
  // base was pruned) and, last, its close report.
  void CloseDay(const std::string& day, const std::vector<Change>& delta,
                const std::vector<Change>& base, uint64_t since = 0, uint64_t until = 0) {
    CloseDayWith(day, delta, base, since, until);
  }
  void CloseDayWithoutBase(const std::string& day, const std::vector<Change>& delta,
                           uint64_t since = 0, uint64_t until = 0) {
    CloseDayWith(day, delta, std::nullopt, since, until);
  }
  void CloseDayWith(const std::string& day, const std::vector<Change>& delta,
                    const std::optional<std::vector<Change>>& base, uint64_t since,
                    uint64_t until) {
    const std::string delta_path = absl::StrCat(model_dir_, "/deltas/", day, "/server-0.delta");
    fs::create_directories(fs::path(delta_path).parent_path());
    ASSERT_TRUE(WriteDelta(delta_path, delta, since, until).ok());
    if (base.has_value()) {
      fs::create_directories(absl::StrCat(model_dir_, "/bases/", day, "/server-0"));
      proto::CheckpointManifest manifest;
      manifest.set_id(kManifestId);
      manifest.set_num_servers(1);
      *manifest.mutable_shard_map() = ShardMap::EvenSplit(1, 1).ToProto();
      std::string text;
      ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(manifest, &text));
      std::ofstream(absl::StrCat(model_dir_, "/bases/", day, "/MANIFEST")) << text;
      base_rows_[day] = *base;
    }
    WriteCloseReport(day, fs::file_size(delta_path));
  }

  void WriteCloseReport(const std::string& day, uintmax_t bytes) {
    fs::create_directories(model_dir_ + "/reports");
    std::ofstream(absl::StrCat(model_dir_, "/reports/", day, ".close.json")) << absl::StrFormat(
        R"({"day": "%s", "closed": "x", "close_seconds": 0.1, "base": "/elsewhere/bases/%s",
 "base_manifest_id": %d, "shrunk_by_an_earlier_run": false,
 "tables": [{"table": "emb", "rows_kept": 1, "rows_evicted": 0}],
 "delta": {"rows": 1, "tombstones": 0, "files": [{"path": "/elsewhere/deltas/%s/server-0.delta", "rows": 1, "tombstones": 0, "bytes": %d}]}}
)",
        day, day, kManifestId, day, bytes);
  }

  // `key`'s row by Find, checked equal to the row a batched Read gives.
  static std::vector<float> Row(const ServedModel& model, uint64_t key) {
    const float* row = model.table("emb")->Find(key);
    std::vector<float> found =
        row == nullptr ? std::vector<float>() : std::vector<float>(row, row + kDim);
    const std::vector<uint64_t> keys = {key + 1000, key};  // a key without a row first
    std::vector<float> read(keys.size() * kDim, -1);
    EXPECT_TRUE(model.table("emb")->Read(keys, read.data()).ok());
    EXPECT_EQ(std::vector<float>(read.begin() + kDim, read.end()),
              row == nullptr ? std::vector<float>(kDim, -1) : found);
    return found;
  }

  std::string root_;
  std::string model_dir_;
  ModelBundleOptions options_;
  std::map<std::string, std::vector<Change>> base_rows_;
};

TEST_P(ModelBundleTest, LoadsTheNewestBaseThenAppliesLaterDeltasWithTombstones) {
  CloseDay("20261101", {{1, {1, 1}}}, {{1, {1, 1}}});
  CloseDay("20261102", {{2, {2, 2}}}, {{1, {1, 1}}, {2, {2, 2}}, {3, {3, 3}}});
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  std::shared_ptr<const ServedModel> day2 = (*bundle)->Current();
  EXPECT_EQ(day2->version().base_day, "20261102");
  EXPECT_EQ(day2->version().delta_day, "");
  // Held in memory: every row, or read in place none (no delta yet).
  EXPECT_EQ(day2->table("emb")->size(), GetParam() == ServedTables::kMemory ? 3u : 0u);
  EXPECT_EQ(Row(*day2, 3), (std::vector<float>{3, 3}));

  // Day 3 changes key 1, adds key 4 and evicts key 3.
  CloseDayWithoutBase("20261103", {{1, {10, 10}}, {4, {4, 4}}, {3, {}}});
  absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas();
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1);
  std::shared_ptr<const ServedModel> day3 = (*bundle)->Current();
  EXPECT_EQ(day3->version().base_day, "20261102");
  EXPECT_EQ(day3->version().delta_day, "20261103");
  EXPECT_EQ(Row(*day3, 1), (std::vector<float>{10, 10}));
  EXPECT_EQ(Row(*day3, 2), (std::vector<float>{2, 2}));
  EXPECT_EQ(Row(*day3, 3), std::vector<float>());
  EXPECT_EQ(Row(*day3, 4), (std::vector<float>{4, 4}));
  // A reader of the version before still holds it whole.
  EXPECT_EQ(Row(*day2, 1), (std::vector<float>{1, 1}));
  EXPECT_EQ(Row(*day2, 3), (std::vector<float>{3, 3}));
  // Nothing new: nothing applied.
  applied = (*bundle)->ApplyNewDeltas();
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, 0);
}

TEST_P(ModelBundleTest, ACorruptDeltaIsRefusedNamingItsFileAndThePreviousVersionKeepsServing) {
  CloseDay("20261101", {{1, {1, 1}}}, {{1, {1, 1}}});
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();

  // Day 2's delta loses its footer (truncated), with a report that matches its size.
  CloseDayWithoutBase("20261102", {{1, {5, 5}}});
  const std::string delta = model_dir_ + "/deltas/20261102/server-0.delta";
  const uintmax_t bytes = fs::file_size(delta);
  fs::resize_file(delta, bytes - 4);
  WriteCloseReport("20261102", bytes - 4);
  absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas();
  ASSERT_FALSE(applied.ok());
  EXPECT_NE(applied.status().message().find(delta), std::string::npos) << applied.status();
  EXPECT_EQ((*bundle)->Current()->version().day(), "20261101");
  EXPECT_EQ(Row(*(*bundle)->Current(), 1), (std::vector<float>{1, 1}));

  // A size other than the report's (a file still being copied in) is refused alike.
  WriteCloseReport("20261102", bytes);
  applied = (*bundle)->ApplyNewDeltas();
  ASSERT_FALSE(applied.ok());
  EXPECT_NE(applied.status().message().find("bytes, the close report"), std::string::npos)
      << applied.status();

  // Re-closed whole, the day is applied on the next poll.
  CloseDayWithoutBase("20261102", {{1, {5, 5}}});
  applied = (*bundle)->ApplyNewDeltas();
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ((*bundle)->Current()->version().delta_day, "20261102");
  EXPECT_EQ(Row(*(*bundle)->Current(), 1), (std::vector<float>{5, 5}));
}

TEST_P(ModelBundleTest, ADayWithoutItsCloseReportHasNotArrivedAndABadBaseFallsBackToTheOneBefore) {
  CloseDay("20261101", {{1, {1, 1}}}, {{1, {1, 1}}});
  CloseDay("20261102", {{1, {2, 2}}}, {{1, {2, 2}}});
  // Day 2's base is not the one its report closed: the bundle starts from day 1's base and
  // applies day 2's delta.
  std::ofstream(model_dir_ + "/bases/20261102/MANIFEST") << "id: 99\n";
  // Day 3's delta is there but its close report is not yet.
  const std::string delta3 = model_dir_ + "/deltas/20261103/server-0.delta";
  fs::create_directories(fs::path(delta3).parent_path());
  ASSERT_TRUE(WriteDelta(delta3, {{1, {3, 3}}}).ok());

  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ((*bundle)->Current()->version().base_day, "20261101");
  absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas();
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1);
  EXPECT_EQ((*bundle)->Current()->version().delta_day, "20261102");
  EXPECT_EQ(Row(*(*bundle)->Current(), 1), (std::vector<float>{2, 2}));
}

TEST_P(ModelBundleTest, ADeltaThatDoesNotStartWhereTheServedModelIsIsRefused) {
  CloseDay("20261101", {{1, {1, 1}}}, {{1, {1, 1}}}, 0, 5);
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  CloseDayWithoutBase("20261102", {{1, {2, 2}}}, 5, 9);
  absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas();
  ASSERT_TRUE(applied.ok()) << applied.status();
  // Day 3's delta starts after version 12: the changes of versions 10..12 are not served.
  CloseDayWithoutBase("20261103", {{1, {3, 3}}}, 12, 15);
  applied = (*bundle)->ApplyNewDeltas();
  ASSERT_FALSE(applied.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(applied.status())) << applied.status();
  EXPECT_NE(applied.status().message().find("20261103/server-0.delta holds the changes of server "
                                            "0 after version 12, but the served model is at "
                                            "version 9"),
            std::string::npos)
      << applied.status();
  EXPECT_EQ((*bundle)->Current()->version().delta_day, "20261102");
  EXPECT_EQ(Row(*(*bundle)->Current(), 1), (std::vector<float>{2, 2}));
}

TEST_P(ModelBundleTest, AFolderWithoutAClosedDayIsAnErrorNamingIt) {
  fs::create_directories(model_dir_ + "/bases/20261101");
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
  ASSERT_FALSE(bundle.ok());
  EXPECT_TRUE(absl::IsNotFound(bundle.status()));
  EXPECT_NE(bundle.status().message().find(model_dir_), std::string::npos) << bundle.status();
}

// A day whose base verifies: read in place, the bundle serves that base (the overlay emptied);
// in memory, its delta. Either way the same rows, row for row, on a base plus two deltas.
TEST_P(ModelBundleTest, ServesTheSameRowsOnABasePlusTwoDeltasAndSwitchesToANewerBase) {
  const std::vector<Change> base1 = {{1, {1, 1}}, {2, {2, 2}}, {3, {3, 3}}};
  CloseDay("20261101", {{1, {1, 1}}}, base1);
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  CloseDayWithoutBase("20261102", {{2, {20, 20}}, {5, {5, 5}}, {3, {}}});
  const std::vector<Change> base3 = {{1, {1, 1}}, {2, {21, 21}}, {3, {33, 33}}, {6, {6, 6}}};
  CloseDay("20261103", {{2, {21, 21}}, {5, {}}, {3, {33, 33}}, {6, {6, 6}}}, base3);
  absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas();
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 2);
  std::shared_ptr<const ServedModel> model = (*bundle)->Current();
  EXPECT_EQ(model->version().day(), "20261103");
  if (GetParam() == ServedTables::kRocksDb) {
    EXPECT_EQ(model->version().base_day, "20261103");
    EXPECT_EQ(model->table("emb")->size(), 0u);
  } else {
    EXPECT_EQ(model->version().base_day, "20261101");
    EXPECT_EQ(model->version().delta_day, "20261103");
  }
  const std::map<uint64_t, std::vector<float>> expected = {
      {1, {1, 1}}, {2, {21, 21}}, {3, {33, 33}}, {4, {}}, {5, {}}, {6, {6, 6}}};
  for (const auto& [key, row] : expected) EXPECT_EQ(Row(*model, key), row) << "key " << key;
}

TEST_P(ModelBundleTest, RowsAreEqualRowForRowInBothModes) {
  CloseDay("20261101", {{1, {1, 1}}}, {{1, {1, 1}}, {2, {2, 2}}, {3, {3, 3}}});
  CloseDayWithoutBase("20261102", {{2, {20, 20}}, {4, {4, 4}}, {3, {}}});
  CloseDayWithoutBase("20261103", {{4, {}}, {5, {5, 5}}, {1, {11, 11}}});
  std::map<ServedTables, std::shared_ptr<const ServedModel>> models;
  for (ServedTables tables : {ServedTables::kMemory, ServedTables::kRocksDb}) {
    options_.tables = tables;
    absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas();
    ASSERT_TRUE(applied.ok()) << applied.status();
    EXPECT_EQ(*applied, 2);
    models[tables] = (*bundle)->Current();
  }
  for (uint64_t key = 0; key <= 6; ++key) {
    EXPECT_EQ(Row(*models[ServedTables::kMemory], key), Row(*models[ServedTables::kRocksDb], key))
        << "key " << key;
  }
  EXPECT_EQ(Row(*models[ServedTables::kRocksDb], 1), (std::vector<float>{11, 11}));
  EXPECT_EQ(Row(*models[ServedTables::kRocksDb], 3), std::vector<float>());
}

// Reading in place routes keys by the base's shard map; the memory mode, which reads every
// shard whole, routes none and serves such a base.
TEST_P(ModelBundleTest, ReadInPlaceABaseWithoutAShardMapIsRefusedNamingItsManifest) {
  CloseDay("20261101", {{1, {1, 1}}}, {{1, {1, 1}}});
  const std::string manifest = model_dir_ + "/bases/20261101/MANIFEST";
  std::ofstream(manifest) << "id: " << kManifestId << "\n";
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options_);
  if (GetParam() == ServedTables::kMemory) {
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    EXPECT_EQ(Row(*(*bundle)->Current(), 1), (std::vector<float>{1, 1}));
    return;
  }
  ASSERT_FALSE(bundle.ok());
  EXPECT_TRUE(absl::IsDataLoss(bundle.status())) << bundle.status();
  EXPECT_NE(bundle.status().message().find(manifest + " has no valid shard map"), std::string::npos)
      << bundle.status();
}

INSTANTIATE_TEST_SUITE_P(BothModes, ModelBundleTest,
                         ::testing::Values(ServedTables::kMemory, ServedTables::kRocksDb),
                         [](const ::testing::TestParamInfo<ServedTables>& info) {
                           return info.param == ServedTables::kMemory ? "Memory" : "RocksDb";
                         });

TEST(ModelBundleInMemoryTest, ServesTheGivenRowsAsTheGivenVersionAndAppliesNoDeltas) {
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::InMemory(
      ServedVersion{"20260101", ""}, {{"emb", 2, {7, 9}, {1.0f, 2.0f, 3.0f, 4.0f}}});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  std::shared_ptr<const ServedModel> model = (*bundle)->Current();
  EXPECT_EQ(model->version().day(), "20260101");
  const ServedTable* table = model->table("emb");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->size(), 2u);
  ASSERT_NE(table->Find(9), nullptr);
  EXPECT_EQ(table->Find(9)[0], 3.0f);
  EXPECT_EQ(table->Find(9)[1], 4.0f);
  EXPECT_EQ(table->Find(8), nullptr);
  absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas();
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 0);
}

TEST(ModelBundleInMemoryTest, RowsThatDoNotFitTheDimAreAnErrorNamingTheTable) {
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle =
      ModelBundle::InMemory(ServedVersion{"20260101", ""}, {{"emb", 2, {7, 9}, {1.0f, 2.0f}}});
  ASSERT_FALSE(bundle.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bundle.status())) << bundle.status();
  EXPECT_NE(bundle.status().message().find("'emb'"), std::string::npos) << bundle.status();
}

}  // namespace
}  // namespace granary
