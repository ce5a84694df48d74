#include "worker/reader.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "common/feature_key.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "worker/tools/item_item_regression.h"
#include "worker/tools/rating_factorization.h"

namespace granary {

// Whole-batch equality, for comparing plain and gzip input.
bool operator==(const FloatColumn& a, const FloatColumn& b) {
  return a.name == b.name && a.values == b.values && a.present == b.present;
}
bool operator==(const CategoricalColumn& a, const CategoricalColumn& b) {
  return a.name == b.name && a.keys == b.keys && a.present == b.present;
}
bool operator==(const MultiCategoricalColumn& a, const MultiCategoricalColumn& b) {
  return a.name == b.name && a.offsets == b.offsets && a.keys == b.keys;
}
bool operator==(const SequenceField& a, const SequenceField& b) {
  return a.name == b.name && a.kind == b.kind && a.keys == b.keys && a.values == b.values;
}
bool operator==(const SequenceColumn& a, const SequenceColumn& b) {
  return a.name == b.name && a.offsets == b.offsets && a.fields == b.fields;
}
bool operator==(const Batch& a, const Batch& b) {
  return a.size == b.size && a.labels == b.labels && a.numerics == b.numerics &&
         a.categoricals == b.categoricals && a.multi_categoricals == b.multi_categoricals &&
         a.sequences == b.sequences;
}

namespace {

using ::testing::HasSubstr;

constexpr char kConfig[] = R"(
columns { name: "click" role: LABEL }
columns { name: "price" role: NUMERIC }
columns { name: "item" role: CATEGORICAL hash_space: "item" }
columns { name: "user" role: CATEGORICAL }
columns { name: "tags" role: MULTI_CATEGORICAL }
columns {
  name: "history"
  role: SEQUENCE
  max_sequence_length: 3
  step_fields { name: "item" kind: CATEGORICAL hash_space: "item" }
  step_fields { name: "genre" kind: CATEGORICAL }
  step_fields { name: "rating" kind: NUMERIC }
}
columns { name: "note" role: IGNORED }
)";
constexpr char kHeader[] = "click\tprice\titem\tuser\ttags\thistory\tnote";

proto::DatasetConfig Config(const std::string& extra = "") {
  proto::DatasetConfig config;
  absl::Status status = ParseTextProto(std::string(kConfig) + extra, "kConfig", &config);
  EXPECT_TRUE(status.ok()) << status;
  return config;
}

// One data line of kHeader's layout.
std::string Line(const std::string& click, const std::string& price, const std::string& item,
                 const std::string& user, const std::string& tags, const std::string& history,
                 const std::string& note = "n") {
  return absl::StrJoin({click, price, item, user, tags, history, note}, "\t");
}

// A line whose values all derive from `i`, so a sample identifies its line.
std::string NumberedLine(int i) {
  return Line(absl::StrCat(i % 2), absl::StrCat(i), absl::StrCat("i", i), "u", "a,b",
              absl::StrCat(i, ",g,", i % 5));
}

std::string Lines(const std::vector<std::string>& lines) {
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

std::string NumberedFile(int num_lines) {
  std::vector<std::string> lines = {kHeader};
  for (int i = 0; i < num_lines; ++i) lines.push_back(NumberedLine(i));
  return Lines(lines);
}

// A folder of the running test alone: ctest runs this file's tests as parallel processes,
// which must not share files.
std::string TestTempDir() {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/", test->test_suite_name(), ".",
                                 test->name(), ".", getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

class ReaderTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(TestTempDir()); }

  std::string Path(const std::string& name) {
    std::string dir = TestTempDir() + "/reader_test";
    std::filesystem::create_directories(dir);
    return dir + "/" + name;
  }
  std::string WritePlain(const std::string& name, const std::string& text) {
    std::string path = Path(name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string WriteGzip(const std::string& name, const std::string& text) {
    std::string path = Path(name);
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    EXPECT_EQ(gzwrite(file, text.data(), text.size()), static_cast<int>(text.size()));
    EXPECT_EQ(gzclose(file), Z_OK);
    return path;
  }

  std::unique_ptr<Reader> Open(std::vector<std::string> files, int batch_size = 4,
                               const proto::DatasetConfig& config = Config(),
                               int prefetch_batches = 2) {
    ReaderOptions options;
    options.batch_size = batch_size;
    options.prefetch_batches = prefetch_batches;
    absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open(config, files, options);
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? std::move(*reader) : nullptr;
  }

  static std::vector<Batch> ReadAll(Reader* reader) {
    std::vector<Batch> batches;
    Batch batch;
    while (reader->Next(&batch)) batches.push_back(std::move(batch));
    return batches;
  }
};

// Collects the text of WARNING log messages (logged from the prefetch thread).
class WarningCollector : public google::LogSink {
 public:
  WarningCollector() { google::AddLogSink(this); }
  ~WarningCollector() override { google::RemoveLogSink(this); }

  void send(google::LogSeverity severity, const char*, const char*, int,
            const google::LogMessageTime&, const char* message, size_t length) override {
    if (severity != google::GLOG_WARNING) return;
    std::lock_guard<std::mutex> lock(mutex_);
    messages_.emplace_back(message, length);
  }

  std::vector<std::string> messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

TEST_F(ReaderTest, PlainAndGzipGiveIdenticalBatches) {
  std::string text = NumberedFile(10);
  // Names that lie: the format is told by the magic bytes.
  std::unique_ptr<Reader> plain = Open({WritePlain("plain.tsv.gz", text)});
  std::unique_ptr<Reader> gzip = Open({WriteGzip("gzip.tsv", text)});
  std::vector<Batch> plain_batches = ReadAll(plain.get());
  std::vector<Batch> gzip_batches = ReadAll(gzip.get());
  EXPECT_TRUE(plain->status().ok()) << plain->status();
  EXPECT_TRUE(gzip->status().ok()) << gzip->status();
  ASSERT_EQ(plain_batches.size(), 3u);  // 4 + 4 + 2
  EXPECT_EQ(plain_batches[2].size, 2);
  EXPECT_TRUE(plain_batches == gzip_batches);
  EXPECT_EQ(plain->stats().samples, 10u);
  EXPECT_EQ(gzip->stats().lines, 10u);
  EXPECT_EQ(gzip->stats().files_done, 1u);
}

TEST_F(ReaderTest, KeysAreHashedInTheirHashSpaces) {
  std::string path =
      WritePlain("keys.tsv", Lines({kHeader, Line("1", "2.5", "42", "42", "42", "42,drama,4")}));
  std::unique_ptr<Reader> reader = Open({path});
  Batch batch;
  ASSERT_TRUE(reader->Next(&batch));
  ASSERT_EQ(batch.size, 1);
  ASSERT_EQ(batch.categoricals.size(), 2u);
  const uint64_t item_key = FeatureKey(FieldSeed("item"), "42");
  EXPECT_EQ(batch.categoricals[FindColumn(batch.categoricals, "item")].keys[0], item_key);
  // Default hash space: the column's name.
  EXPECT_EQ(batch.categoricals[FindColumn(batch.categoricals, "user")].keys[0],
            FeatureKey("user", "42"));
  EXPECT_EQ(batch.multi_categoricals[0].keys[0], FeatureKey("tags", "42"));
  // The step field shares the "item" hash space with the item column.
  const SequenceColumn& history = batch.sequences[0];
  EXPECT_EQ(history.fields[FindColumn(history.fields, "item")].keys[0], item_key);
  // A step field's default hash space is "<column>.<field>".
  EXPECT_EQ(history.fields[1].keys[0], FeatureKey("history.genre", "drama"));
  EXPECT_NE(FeatureKey("history.genre", "drama"), FeatureKey("genre", "drama"));
  EXPECT_EQ(FindColumn(batch.labels, "note"), -1);
  EXPECT_EQ(FindColumn(batch.categoricals, "note"), -1);
  EXPECT_EQ(ColumnHashSpace(Config().columns(3)), "user");
  EXPECT_EQ(StepFieldHashSpace(Config().columns(5), Config().columns(5).step_fields(1)),
            "history.genre");
}

TEST_F(ReaderTest, MultiAndSequenceColumnsAreCsr) {
  std::string path = WritePlain(
      "csr.tsv",
      Lines({kHeader, Line("1", "1", "a", "u", "x,y,z", "a,g1,1;b,g2,2"),
             Line("0", "1", "b", "u", "", ""), Line("1", "1", "c", "u", "w", "c,g3,3")}));
  std::unique_ptr<Reader> reader = Open({path});
  Batch batch;
  ASSERT_TRUE(reader->Next(&batch));
  ASSERT_EQ(batch.size, 3);
  const MultiCategoricalColumn& tags = batch.multi_categoricals[0];
  EXPECT_EQ(tags.offsets, (std::vector<uint32_t>{0, 3, 3, 4}));
  EXPECT_EQ(tags.keys, (std::vector<uint64_t>{FeatureKey("tags", "x"), FeatureKey("tags", "y"),
                                              FeatureKey("tags", "z"), FeatureKey("tags", "w")}));
  const SequenceColumn& history = batch.sequences[0];
  EXPECT_EQ(history.offsets, (std::vector<uint32_t>{0, 2, 2, 3}));
  EXPECT_EQ(history.Length(0), 2u);
  EXPECT_EQ(history.Length(1), 0u);
  ASSERT_EQ(history.fields.size(), 3u);
  EXPECT_EQ(history.fields[0].kind, proto::StepFieldConfig::CATEGORICAL);
  EXPECT_EQ(history.fields[0].keys,
            (std::vector<uint64_t>{FeatureKey("item", "a"), FeatureKey("item", "b"),
                                   FeatureKey("item", "c")}));
  EXPECT_TRUE(history.fields[0].values.empty());
  EXPECT_EQ(history.fields[2].kind, proto::StepFieldConfig::NUMERIC);
  EXPECT_EQ(history.fields[2].values, (std::vector<float>{1, 2, 3}));
  EXPECT_TRUE(history.fields[2].keys.empty());
}

TEST_F(ReaderTest, MaxSequenceLengthKeepsTheMostRecentSteps) {
  // Steps are oldest first; max_sequence_length 3 keeps the last three.
  std::string path =
      WritePlain("truncate.tsv",
                 Lines({kHeader, Line("1", "1", "a", "u", "", "s1,g,1;s2,g,2;s3,g,3;s4,g,4;s5,g,5"),
                        Line("1", "1", "a", "u", "", "t1,g,1;t2,g,2;t3,g,3")}));
  std::unique_ptr<Reader> reader = Open({path});
  Batch batch;
  ASSERT_TRUE(reader->Next(&batch));
  const SequenceColumn& history = batch.sequences[0];
  EXPECT_EQ(history.offsets, (std::vector<uint32_t>{0, 3, 6}));
  EXPECT_EQ(history.fields[0].keys[0], FeatureKey("item", "s3"));
  EXPECT_EQ(history.fields[0].keys[2], FeatureKey("item", "s5"));
  EXPECT_EQ(history.fields[2].values, (std::vector<float>{3, 4, 5, 1, 2, 3}));

  // Without a limit every step is kept.
  proto::DatasetConfig unlimited = Config();
  unlimited.mutable_columns(5)->clear_max_sequence_length();
  reader = Open({path}, 4, unlimited);
  ASSERT_TRUE(reader->Next(&batch));
  EXPECT_EQ(batch.sequences[0].offsets, (std::vector<uint32_t>{0, 5, 8}));
}

TEST_F(ReaderTest, EmptyCellsAreMissing) {
  std::string path = WritePlain("missing.tsv", Lines({kHeader, Line("", "", "", "", "", "", ""),
                                                      Line("0", "-1.5e2", "a", "", "", "", "")}));
  std::unique_ptr<Reader> reader = Open({path});
  Batch batch;
  ASSERT_TRUE(reader->Next(&batch));
  ASSERT_EQ(batch.size, 2);
  EXPECT_EQ(batch.labels[0].present, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(batch.labels[0].values, (std::vector<float>{0, 0}));
  EXPECT_EQ(batch.numerics[0].present, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(batch.numerics[0].values, (std::vector<float>{0, -150}));
  EXPECT_EQ(batch.categoricals[0].present, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(batch.categoricals[0].keys[0], 0u);
  EXPECT_EQ(batch.categoricals[1].present, (std::vector<uint8_t>{0, 0}));
  EXPECT_EQ(batch.multi_categoricals[0].offsets, (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_EQ(batch.sequences[0].offsets, (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_EQ(reader->stats().bad_lines, 0u);
}

TEST_F(ReaderTest, EveryBadLineIsReportedWithFileAndLineAndSkipped) {
  WarningCollector warnings;
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"click\tprice", "expected 7 tab-separated cells, found 2"},
      {"", "empty line"},
      {Line("yes", "1", "a", "u", "", ""), "column 'click': 'yes' is not a finite number"},
      {Line("1", "inf", "a", "u", "", ""), "column 'price': 'inf' is not a finite number"},
      {Line("1", "1", "a", "u", "x,,y", ""), "column 'tags': empty token in 'x,,y'"},
      {Line("1", "1", "a", "u", "x,", ""), "column 'tags': empty token in 'x,'"},
      {Line("1", "1", "a", "u", "", "a,g,1;b,g"),
       "column 'history': step 2 'b,g' has 2 fields, expected 3"},
      {Line("1", "1", "a", "u", "", "a,g,1,9"),
       "column 'history': step 1 'a,g,1,9' has 4 fields, expected 3"},
      {Line("1", "1", "a", "u", "", "a,,1"), "column 'history': step 1 field 'genre' is empty"},
      {Line("1", "1", "a", "u", "", "a,g,1;"), "column 'history': step 2 field 'item' is empty"},
      {Line("1", "1", "a", "u", "", "a,g,x"),
       "column 'history': step 1 field 'rating': 'x' is not a finite number"},
  };
  // Good lines 2, 4, ...; bad lines 3, 5, ... (line 1 is the header).
  std::vector<std::string> lines = {kHeader};
  for (size_t i = 0; i < bad.size(); ++i) {
    lines.push_back(NumberedLine(i));
    lines.push_back(bad[i].first);
  }
  lines.push_back(NumberedLine(bad.size()));
  std::string path = WritePlain("bad.tsv", Lines(lines));
  // Tolerate every bad line here; the limit has its own test.
  std::unique_ptr<Reader> reader = Open({path}, 4, Config("max_bad_line_fraction: 1\n"));
  std::vector<Batch> batches = ReadAll(reader.get());
  ASSERT_TRUE(reader->status().ok()) << reader->status();

  // Only the good lines became samples, in order and complete.
  std::vector<float> prices;
  std::vector<uint32_t> lengths;
  for (const Batch& batch : batches) {
    for (int i = 0; i < batch.size; ++i) {
      prices.push_back(batch.numerics[0].values[i]);
      lengths.push_back(batch.sequences[0].Length(i));
      EXPECT_EQ(batch.multi_categoricals[0].offsets[i + 1] - batch.multi_categoricals[0].offsets[i],
                2u);
    }
    EXPECT_EQ(batch.multi_categoricals[0].keys.size(), 2u * batch.size);
    EXPECT_EQ(batch.sequences[0].fields[0].keys.size(), batch.sequences[0].offsets.back());
    EXPECT_EQ(batch.sequences[0].fields[2].values.size(), batch.sequences[0].offsets.back());
  }
  std::vector<float> expected_prices;
  for (size_t i = 0; i <= bad.size(); ++i) expected_prices.push_back(i);
  EXPECT_EQ(prices, expected_prices);
  EXPECT_EQ(lengths, std::vector<uint32_t>(bad.size() + 1, 1));

  ReaderStats stats = reader->stats();
  EXPECT_EQ(stats.lines, 2 * bad.size() + 1);
  EXPECT_EQ(stats.bad_lines, bad.size());
  EXPECT_EQ(stats.samples, bad.size() + 1);
  ASSERT_EQ(stats.first_bad_lines.size(), kLoggedBadLines);
  std::vector<std::string> logged = warnings.messages();
  ASSERT_EQ(logged.size(), kLoggedBadLines);  // the 11th bad line is not logged
  for (size_t i = 0; i < kLoggedBadLines; ++i) {
    std::string expected = absl::StrCat(path, ":", 3 + 2 * i, ": ", bad[i].second);
    EXPECT_EQ(stats.first_bad_lines[i], expected);
    // The 10th message also says that logging slows down from now on.
    EXPECT_THAT(logged[i], HasSubstr(expected));
  }
  // Reasons past the logged ones, checked through a reader that meets them first.
  for (size_t i = kLoggedBadLines; i < bad.size(); ++i) {
    std::string single = WritePlain("single.tsv", Lines({kHeader, NumberedLine(0), bad[i].first}));
    std::unique_ptr<Reader> one = Open({single}, 4, Config("max_bad_line_fraction: 1\n"));
    ReadAll(one.get());
    ASSERT_EQ(one->stats().first_bad_lines.size(), 1u);
    EXPECT_EQ(one->stats().first_bad_lines[0], absl::StrCat(single, ":3: ", bad[i].second));
  }
}

TEST_F(ReaderTest, BadLineLogIsRateLimited) {
  std::vector<std::string> lines = {kHeader, NumberedLine(0)};
  for (int i = 0; i < 2500; ++i) lines.push_back("bad");
  WarningCollector warnings;
  std::unique_ptr<Reader> reader =
      Open({WritePlain("flood.tsv", Lines(lines))}, 4, Config("max_bad_line_fraction: 1\n"));
  ReadAll(reader.get());
  ASSERT_TRUE(reader->status().ok()) << reader->status();
  EXPECT_EQ(reader->stats().bad_lines, 2500u);
  std::vector<std::string> logged = warnings.messages();
  // The first 10, then the 1000th and the 2000th.
  ASSERT_EQ(logged.size(), kLoggedBadLines + 2);
  EXPECT_THAT(logged[kLoggedBadLines - 1], HasSubstr("only every 1000th bad line is logged"));
  EXPECT_THAT(logged[kLoggedBadLines], HasSubstr(":1002: expected 7"));
  EXPECT_THAT(logged[kLoggedBadLines], HasSubstr("bad line 1000 of 1001 read"));
}

TEST_F(ReaderTest, TooManyBadLinesAbortsNamingFileAndCounts) {
  // Every 10th data line is bad: 10 % against a limit of 5 % after 100 lines.
  std::vector<std::string> lines = {kHeader};
  for (int i = 1; i <= 1000; ++i) lines.push_back(i % 10 == 0 ? "bad" : NumberedLine(i));
  std::string path = WritePlain("abort.tsv", Lines(lines));
  std::unique_ptr<Reader> reader =
      Open({path}, 16, Config("max_bad_line_fraction: 0.05\nmin_lines_before_abort: 100\n"));
  std::vector<Batch> batches = ReadAll(reader.get());
  absl::Status status = reader->status();
  ASSERT_TRUE(absl::IsDataLoss(status)) << status;
  // Data line 101 (file line 102) is the first past min_lines_before_abort: 10 of 101 bad.
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat(path, ":102: too many bad lines: 10 of 101 data lines")));
  EXPECT_THAT(status.message(), HasSubstr("max_bad_line_fraction 0.05"));
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("first: ", path, ":11: expected 7")));
  EXPECT_EQ(reader->stats().lines, 101u);
  EXPECT_EQ(reader->stats().samples, 91u);
  int samples = 0;
  for (const Batch& batch : batches) samples += batch.size;
  EXPECT_EQ(samples, 91);  // what was parsed before the abort is still delivered
}

TEST_F(ReaderTest, EarlyBadLinesDoNotAbort) {
  // 5 bad lines first: 100 % of the input so far, but under min_lines_before_abort lines.
  std::vector<std::string> lines = {kHeader};
  for (int i = 0; i < 5; ++i) lines.push_back("bad");
  for (int i = 0; i < 1500; ++i) lines.push_back(NumberedLine(i));
  std::unique_ptr<Reader> reader = Open({WritePlain("early.tsv", Lines(lines))}, 64);
  ReadAll(reader.get());
  EXPECT_TRUE(reader->status().ok()) << reader->status();
  EXPECT_EQ(reader->stats().bad_lines, 5u);
  EXPECT_EQ(reader->stats().samples, 1500u);
}

TEST_F(ReaderTest, InputWithoutAGoodLineIsAnError) {
  std::string path = WritePlain("allbad.tsv", Lines({kHeader, "bad", "worse"}));
  std::unique_ptr<Reader> reader = Open({path});
  EXPECT_TRUE(ReadAll(reader.get()).empty());
  ASSERT_TRUE(absl::IsDataLoss(reader->status())) << reader->status();
  EXPECT_THAT(reader->status().message(), HasSubstr(path));
  EXPECT_THAT(reader->status().message(), HasSubstr("all 2 data lines are bad"));
}

TEST_F(ReaderTest, HeaderMustMatchTheConfig) {
  std::string path = WritePlain(
      "missing_column.tsv", Lines({"click\tprice\titem\ttags\thistory\tnote", "1\t1\ta\t\t\tn"}));
  std::unique_ptr<Reader> reader = Open({path});
  EXPECT_TRUE(ReadAll(reader.get()).empty());
  ASSERT_TRUE(absl::IsInvalidArgument(reader->status())) << reader->status();
  EXPECT_THAT(reader->status().message(),
              HasSubstr(absl::StrCat(path, ":1: header lacks configured column 'user'")));

  path = WritePlain("extra_column.tsv", Lines({absl::StrCat(kHeader, "\tsurprise"),
                                               absl::StrCat(NumberedLine(1), "\tx")}));
  reader = Open({path});
  ReadAll(reader.get());
  ASSERT_TRUE(absl::IsInvalidArgument(reader->status())) << reader->status();
  EXPECT_THAT(reader->status().message(),
              HasSubstr(absl::StrCat(path,
                                     ":1: header has columns the dataset config does not "
                                     "name: 'surprise'")));

  path = WritePlain("twice.tsv", Lines({absl::StrCat(kHeader, "\tclick")}));
  reader = Open({path});
  ReadAll(reader.get());
  EXPECT_THAT(reader->status().message(), HasSubstr("header names column 'click' twice"));

  path = WritePlain("empty.tsv", "");
  reader = Open({path});
  ReadAll(reader.get());
  EXPECT_THAT(reader->status().message(), HasSubstr(absl::StrCat(path, ": empty file")));
}

TEST_F(ReaderTest, ColumnOrderMayDifferBetweenFilesAndBatchesSpanFiles) {
  std::string first = WritePlain("first.tsv", NumberedFile(3));
  // The same columns in another order.
  std::string second = WritePlain(
      "second.tsv",
      Lines({"note\thistory\ttags\tuser\titem\tprice\tclick", "n\t3,g,3\ta,b\tu\ti3\t3\t1"}));
  std::unique_ptr<Reader> reader = Open({first, second}, 4);
  std::vector<Batch> batches = ReadAll(reader.get());
  ASSERT_TRUE(reader->status().ok()) << reader->status();
  ASSERT_EQ(batches.size(), 1u);
  std::unique_ptr<Reader> single = Open({WritePlain("four.tsv", NumberedFile(4))}, 4);
  std::vector<Batch> expected = ReadAll(single.get());
  ASSERT_EQ(expected.size(), 1u);
  EXPECT_TRUE(batches[0] == expected[0]);
  EXPECT_EQ(reader->stats().files_done, 2u);
}

TEST_F(ReaderTest, WindowsLineEndsAndAMissingLastNewlineAreFine) {
  std::string text = absl::StrCat(kHeader, "\r\n", NumberedLine(0), "\r\n", NumberedLine(1));
  std::unique_ptr<Reader> reader = Open({WritePlain("crlf.tsv", text)});
  std::vector<Batch> batches = ReadAll(reader.get());
  ASSERT_TRUE(reader->status().ok()) << reader->status();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].size, 2);
  EXPECT_EQ(batches[0].numerics[0].values, (std::vector<float>{0, 1}));
}

// Slices cut a file at arbitrary bytes; together they must read every line exactly once.
TEST_F(ReaderTest, SlicesCutAtAnyByteReadEveryLineOnce) {
  const std::string path = WritePlain("sliced.tsv", NumberedFile(50));
  const uint64_t size = std::filesystem::file_size(path);
  for (uint64_t cut : {uint64_t{1}, uint64_t{2}, uint64_t{17}, uint64_t{100}, size / 3, size}) {
    std::vector<InputSlice> slices;
    for (uint64_t begin = 0; begin < size; begin += cut) {
      slices.push_back(InputSlice{path, begin, begin + cut >= size ? 0 : begin + cut});
    }
    ReaderOptions options;
    options.batch_size = 7;
    absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open(Config(), slices, options);
    ASSERT_TRUE(reader.ok()) << reader.status();
    std::vector<float> prices;
    for (const Batch& batch : ReadAll(reader->get())) {
      const std::vector<float>& values = batch.numerics[0].values;
      prices.insert(prices.end(), values.begin(), values.end());
    }
    ASSERT_TRUE((*reader)->status().ok()) << (*reader)->status();
    std::vector<float> expected(50);
    std::iota(expected.begin(), expected.end(), 0.0f);
    EXPECT_EQ(prices, expected) << "slices of " << cut << " bytes";
  }
}

TEST_F(ReaderTest, PartialSliceOfAGzipFileIsAnErrorNamingIt) {
  const std::string path = WriteGzip("sliced.tsv.gz", NumberedFile(20));
  ReaderOptions options;
  absl::StatusOr<std::unique_ptr<Reader>> reader =
      Reader::Open(Config(), std::vector<InputSlice>{{path, 100, 0}}, options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ReadAll(reader->get());
  absl::Status status = (*reader)->status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr(path + ": a byte range of a gzip file"));
}

TEST_F(ReaderTest, BadLineInASliceNamesTheSliceAndItsLine) {
  std::string text = NumberedFile(10);
  const uint64_t begin = text.size();  // the slice starts at the bad line
  text += "garbage line\n" + NumberedLine(10) + "\n";
  const std::string path = WritePlain("slice-bad.tsv", text);
  WarningCollector warnings;
  ReaderOptions options;
  absl::StatusOr<std::unique_ptr<Reader>> reader =
      Reader::Open(Config(), std::vector<InputSlice>{{path, begin, 0}}, options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<Batch> batches = ReadAll(reader->get());
  ASSERT_TRUE((*reader)->status().ok()) << (*reader)->status();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].numerics[0].values, (std::vector<float>{10}));
  ASSERT_EQ((*reader)->stats().first_bad_lines.size(), 1u);
  EXPECT_THAT((*reader)->stats().first_bad_lines[0],
              HasSubstr(absl::StrCat(path, " bytes ", begin, "..end:1: ")));
}

TEST_F(ReaderTest, MissingFileIsNamedAtOpen) {
  ReaderOptions options;
  absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open(
      Config(), {WritePlain("exists.tsv", NumberedFile(1)), "/nonexistent/x.tsv"}, options);
  ASSERT_TRUE(absl::IsNotFound(reader.status())) << reader.status();
  EXPECT_THAT(reader.status().message(), HasSubstr("/nonexistent/x.tsv"));

  options.batch_size = 0;
  reader = Reader::Open(Config(), std::vector<std::string>{}, options);
  EXPECT_TRUE(absl::IsInvalidArgument(reader.status())) << reader.status();

  proto::DatasetConfig bad = Config();
  bad.mutable_columns(5)->clear_step_fields();
  reader = Reader::Open(bad, std::vector<std::string>{}, ReaderOptions());
  EXPECT_TRUE(absl::IsInvalidArgument(reader.status())) << reader.status();
}

TEST_F(ReaderTest, FileRemovedAfterOpenIsNamed) {
  std::string path = WritePlain("vanishes.tsv", NumberedFile(1));
  std::string first = WritePlain("stays.tsv", NumberedFile(100));
  // Batches of 1 and a queue of 1: the prefetch thread cannot leave the first file before
  // this test takes its batches, so the second is gone by the time it is opened.
  std::unique_ptr<Reader> reader = Open({first, path}, 1, Config(), 1);
  std::filesystem::remove(path);
  ReadAll(reader.get());
  ASSERT_TRUE(absl::IsNotFound(reader->status())) << reader->status();
  EXPECT_THAT(reader->status().message(), HasSubstr(path));
  EXPECT_EQ(reader->stats().files_done, 1u);
}

TEST_F(ReaderTest, TruncatedGzipIsAnErrorAndItsCutLineIsDropped) {
  std::string full = WriteGzip("full.tsv.gz", NumberedFile(20000));
  std::string text;
  {
    std::ifstream in(full, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string path = WritePlain("truncated.tsv.gz", text.substr(0, text.size() / 2));
  std::unique_ptr<Reader> reader = Open({path}, 256);
  std::vector<Batch> batches = ReadAll(reader.get());
  ASSERT_TRUE(absl::IsDataLoss(reader->status())) << reader->status();
  EXPECT_THAT(reader->status().message(), HasSubstr(absl::StrCat(path, ": truncated gzip")));
  // Every delivered sample is a whole line: price i, item "i<i>", in order.
  int next = 0;
  for (const Batch& batch : batches) {
    for (int i = 0; i < batch.size; ++i, ++next) {
      ASSERT_EQ(batch.numerics[0].values[i], next);
      ASSERT_EQ(batch.categoricals[0].keys[i], FeatureKey("item", absl::StrCat("i", next)));
      ASSERT_EQ(batch.sequences[0].Length(i), 1u);
    }
  }
  EXPECT_GT(next, 0);
  EXPECT_LT(next, 20000);
  EXPECT_EQ(reader->stats().bad_lines, 0u);

  // Gzip magic followed by garbage.
  path = WritePlain("garbage.tsv.gz", std::string("\x1f\x8b\x08\x00", 4) + std::string(64, 'x'));
  reader = Open({path});
  ReadAll(reader.get());
  ASSERT_FALSE(reader->status().ok());
  EXPECT_THAT(reader->status().message(), HasSubstr(path));
}

TEST_F(ReaderTest, PrefetchIsBounded) {
  std::string path = WritePlain("long.tsv", NumberedFile(1000));
  std::unique_ptr<Reader> reader = Open({path}, 10, Config(), 2);
  Batch batch;
  ASSERT_TRUE(reader->Next(&batch));
  // A slow consumer: the reader fills its queue (the batch taken + prefetch_batches queued)
  // and then waits instead of reading on.
  EXPECT_TRUE(WaitUntil([&] { return reader->stats().batches_produced == 3; }, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(200));
  ReaderStats stats = reader->stats();
  EXPECT_EQ(stats.batches_produced, 3u);
  EXPECT_LE(stats.lines, 30u);
  int batches = 1;
  while (reader->Next(&batch)) {
    ++batches;
    EXPECT_LE(reader->stats().batches_produced, static_cast<uint64_t>(batches) + 2);
  }
  EXPECT_TRUE(reader->status().ok());
  EXPECT_EQ(batches, 100);
  EXPECT_EQ(reader->stats().batches_produced, 100u);

  // Destroying a reader whose prefetch thread waits for space does not hang.
  reader = Open({path}, 10, Config(), 1);
  ASSERT_TRUE(reader->Next(&batch));
  reader.reset();
}

TEST_F(ReaderTest, ConcurrentConsumersTakeEachBatchOnce) {
  std::unique_ptr<Reader> reader = Open({WritePlain("shared.tsv", NumberedFile(2000))}, 7);
  std::mutex mutex;
  std::multiset<float> prices;
  auto consume = [&] {
    Batch batch;
    while (reader->Next(&batch)) {
      std::lock_guard<std::mutex> lock(mutex);
      prices.insert(batch.numerics[0].values.begin(), batch.numerics[0].values.end());
    }
  };
  std::thread a(consume), b(consume);
  a.join();
  b.join();
  ASSERT_EQ(prices.size(), 2000u);
  EXPECT_EQ(std::set<float>(prices.begin(), prices.end()).size(), 2000u);
}

// --- granary_movielens_convert ------------------------------------------------------------

// A gzip or plain file's lines, without the trailing newline.
std::vector<std::string> ReadLines(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  EXPECT_NE(file, nullptr) << path;
  std::string text;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) text.append(buffer, n);
  gzclose(file);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return absl::StrSplit(text, '\n');
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

class MovielensConvertTest : public ReaderTest {
 protected:
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
  std::unique_ptr<Reader> reader =
      Open({output + "/train-00.tsv.gz", output + "/train-01.tsv.gz", output + "/eval.tsv.gz"}, 100,
           *config);
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

TEST_F(MovielensConvertTest, RealMovielensConvertsAndReads) {
  const std::string input = std::string(GRANARY_SOURCE_DIR) + "/../shared/data/movielens-100k";
  if (!std::filesystem::exists(input + "/u.data")) {
    GTEST_SKIP() << "MovieLens-100K not found at " << input << "; nothing to check";
  }
  std::string output = TestTempDir() + "/movielens_out";
  std::string log;
  ASSERT_EQ(RunConverter({"--input_dir=" + input, "--output_dir=" + output}, &log), 0) << log;
  absl::StatusOr<proto::DatasetConfig> config =
      LoadDatasetConfig(std::string(GRANARY_SOURCE_DIR) + "/configs/movielens_dataset.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<std::string> files = {output + "/eval.tsv.gz"};
  for (int k = 0; k < 8; ++k) files.push_back(absl::StrFormat("%s/train-%02d.tsv.gz", output, k));
  std::unique_ptr<Reader> reader = Open(files, 1024, *config, 4);
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
  EXPECT_EQ(samples, 100000u);
  EXPECT_EQ(reader->stats().bad_lines, 0u);
  // 55,375 ratings of 4 or 5 (README).
  EXPECT_EQ(clicks, 55375u);
}

}  // namespace
}  // namespace granary
