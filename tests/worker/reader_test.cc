#include "worker/reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/feature_key.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/reader_input.h"
#include "tests/testing/warning_collector.h"

namespace granary {
namespace {

using ::testing::HasSubstr;

class ReaderTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(TestTempDir()); }

  std::string Path(const std::string& name) {
    std::string dir = TestTempDir() + "/reader_test";
    std::filesystem::create_directories(dir);
    return dir + "/" + name;
  }
  std::string WritePlain(const std::string& name, const std::string& text) {
    return WritePlainFile(Path(name), text);
  }
  std::string WriteGzip(const std::string& name, const std::string& text) {
    return WriteGzipFile(Path(name), text);
  }

  std::unique_ptr<Reader> Open(std::vector<std::string> files, int batch_size = 4,
                               const proto::DatasetConfig& config = Config(),
                               int prefetch_batches = 2) {
    return OpenReader(std::move(files), config, batch_size, prefetch_batches);
  }
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

// Absurd values, labels outside their task's domain, an over-long line and an over-long
// sequence are bad lines like any other: named by file:line, counted, skipped, and left to the
// bad-line budget.
TEST_F(ReaderTest, PoisonedAndOverlongLinesAreBadLinesUnderTheBudget) {
  const std::string huge_line = Line("1", "1", "a", "u", "", "", std::string(2 << 20, 'n'));
  std::vector<std::string> steps(kDefaultMaxSequenceSteps + 1, "a,g,1");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {Line("1", "3e38", "a", "u", "", ""), "column 'price': 3e+38 exceeds max_abs_numeric 1e+06"},
      {Line("7", "1", "a", "u", "", ""),
       "column 'click': '7' is not a class id in 0..1 (task 'ctr')"},
      {Line("1", "1", "a", "u", "", "a,g,-5e9"),
       "column 'history': step 1 field 'rating': -5e+09 exceeds max_abs_numeric 1e+06"},
      {huge_line, "line longer than max_line_bytes 1048576 (skipped)"},
      {Line("1", "1", "a", "u", "", absl::StrJoin(steps, ";")),
       "column 'history': more than max_sequence_steps 10000 steps"},
  };
  // 1500 good lines after the bad ones: under the default budget of 1 %.
  std::vector<std::string> lines = {kHeader};
  for (const auto& [line, reason] : bad) lines.push_back(line);
  for (int i = 0; i < 1500; ++i) lines.push_back(NumberedLine(i));
  const std::string path = WritePlain("poisoned.tsv", Lines(lines));
  ReaderOptions options;
  options.batch_size = 64;
  options.label_domains = {{"click", kBinaryLabelClasses, "ctr"}};
  absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open(Config(), {path}, options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ReadAll(reader->get());
  ASSERT_TRUE((*reader)->status().ok()) << (*reader)->status();
  ReaderStats stats = (*reader)->stats();
  EXPECT_EQ(stats.bad_lines, bad.size());
  EXPECT_EQ(stats.samples, 1500u);
  ASSERT_EQ(stats.first_bad_lines.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(stats.first_bad_lines[i], absl::StrCat(path, ":", i + 2, ": ", bad[i].second));
  }

  // The budget still decides: the same lines among fewer good ones abort the read.
  lines.resize(1 + bad.size() + 100);
  const std::string small = WritePlain("poisoned_small.tsv", Lines(lines));
  reader = Reader::Open(Config("min_lines_before_abort: 10\n"), {small}, options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ReadAll(reader->get());
  ASSERT_TRUE(absl::IsDataLoss((*reader)->status())) << (*reader)->status();
  EXPECT_THAT((*reader)->status().message(), HasSubstr("too many bad lines: 5 of 11"));

  // Label domains must name LABEL columns.
  options.label_domains = {{"price", kBinaryLabelClasses, "ctr"}};
  reader = Reader::Open(Config(), {path}, options);
  EXPECT_TRUE(absl::IsInvalidArgument(reader.status())) << reader.status();
}

TEST_F(ReaderTest, MaxLineBytesBoundsLinesAndTheHeader) {
  const uint64_t bound = std::string(kHeader).size();
  const std::string long_line = Line("1", "1", "a", "u", "", "", std::string(bound, 'n'));
  const std::string path =
      WritePlain("bounded.tsv", Lines({kHeader, NumberedLine(0), long_line, NumberedLine(1)}));
  std::unique_ptr<Reader> reader = Open(
      {path}, 4, Config(absl::StrCat("max_line_bytes: ", bound, "\nmax_bad_line_fraction: 1\n")));
  ReadAll(reader.get());
  ASSERT_TRUE(reader->status().ok()) << reader->status();
  EXPECT_EQ(reader->stats().samples, 2u);
  EXPECT_EQ(reader->stats().bad_lines, 1u);
  ASSERT_EQ(reader->stats().first_bad_lines.size(), 1u);
  EXPECT_EQ(reader->stats().first_bad_lines[0],
            absl::StrCat(path, ":3: line longer than max_line_bytes ", bound, " (skipped)"));

  // A header over the bound cannot be matched: the file is an error, not a bad line.
  reader = Open({path}, 4, Config(absl::StrCat("max_line_bytes: ", bound - 1, "\n")));
  ASSERT_NE(reader, nullptr);
  ReadAll(reader.get());
  EXPECT_TRUE(absl::IsInvalidArgument(reader->status())) << reader->status();
  EXPECT_THAT(
      reader->status().message(),
      HasSubstr(absl::StrCat(path, ":1: header line longer than max_line_bytes ", bound - 1)));
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

// A chunk resuming after its worker died: skip_lines reads past exactly the lines consumed by
// the batches before (bad lines included), plain, gzip and a partial slice alike, and
// lines_consumed counts from the slice's first line across the skip.
TEST_F(ReaderTest, SkipLinesReadsPastExactlyTheLinesOfTheBatchesBefore) {
  std::vector<std::string> lines = {kHeader};
  for (int i = 0; i < 12; ++i) lines.push_back(i == 2 ? "garbage line" : NumberedLine(i));
  const std::string text = Lines(lines);
  const std::string plain = WritePlain("skip.tsv", text);
  const std::string gzip = WriteGzip("skip.tsv.gz", text);
  // A partial slice of the same lines: a first line to cut off before them.
  const std::string prefix = NumberedLine(99) + "\n";
  const std::string sliced = WritePlain(
      "skip-sliced.tsv", std::string(kHeader) + "\n" + prefix + text.substr(text.find('\n') + 1));
  const uint64_t slice_begin = std::string(kHeader).size() + 1 + prefix.size();
  ReaderOptions options;
  options.batch_size = 3;
  auto read = [&](const InputSlice& slice, uint64_t* lines_consumed) {
    absl::StatusOr<std::unique_ptr<Reader>> reader =
        Reader::Open(Config(), std::vector<InputSlice>{slice}, options);
    EXPECT_TRUE(reader.ok()) << reader.status();
    std::vector<std::vector<float>> prices;
    for (const Batch& batch : ReadAll(reader->get())) {
      prices.push_back(batch.numerics[0].values);
      *lines_consumed = batch.lines_consumed;
    }
    EXPECT_TRUE((*reader)->status().ok()) << (*reader)->status();
    EXPECT_EQ((*reader)->stats().skipped_lines + (*reader)->stats().lines, 12u);
    return prices;
  };
  absl::StatusOr<std::unique_ptr<Reader>> whole =
      Reader::Open(Config(), std::vector<InputSlice>{{plain}}, options);
  ASSERT_TRUE(whole.ok()) << whole.status();
  std::vector<Batch> batches = ReadAll(whole->get());
  ASSERT_EQ(batches.size(), 4u);
  std::vector<uint64_t> consumed;
  for (const Batch& batch : batches) consumed.push_back(batch.lines_consumed);
  EXPECT_EQ(consumed, (std::vector<uint64_t>{4, 7, 10, 12}));  // the bad line 2 in the first
  for (size_t k = 0; k < batches.size(); ++k) {
    std::vector<std::vector<float>> expected;
    for (size_t j = k + 1; j < batches.size(); ++j)
      expected.push_back(batches[j].numerics[0].values);
    for (const InputSlice& slice :
         {InputSlice{plain, 0, 0, consumed[k]}, InputSlice{gzip, 0, 0, consumed[k]},
          InputSlice{sliced, slice_begin, 0, consumed[k]}}) {
      uint64_t last = 0;
      EXPECT_EQ(read(slice, &last), expected) << slice.Name() << " skipping " << consumed[k];
      if (!expected.empty()) {
        EXPECT_EQ(last, 12u) << slice.Name();
      }
    }
  }
  // Skipping more lines than the slice has leaves nothing, without an error.
  uint64_t last = 0;
  EXPECT_TRUE(read(InputSlice{gzip, 0, 0, 50}, &last).empty());
  // A bad line after the skip is named by its line in the slice.
  absl::StatusOr<std::unique_ptr<Reader>> skipping =
      Reader::Open(Config(), std::vector<InputSlice>{{plain, 0, 0, 1}}, options);
  ASSERT_TRUE(skipping.ok()) << skipping.status();
  ReadAll(skipping->get());
  ASSERT_EQ((*skipping)->stats().first_bad_lines.size(), 1u);
  EXPECT_THAT((*skipping)->stats().first_bad_lines[0], HasSubstr(plain + ":4: "));
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

// A FIFO at `path` whose write end the test holds (opened read-write, so neither side's open
// blocks): what it writes, the reader reads; while it writes nothing, a read blocks.
int MakeHeldFifo(const std::string& path) {
  EXPECT_EQ(mkfifo(path.c_str(), 0600), 0) << path << ": " << std::strerror(errno);
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
  return fd;
}

void WriteAll(int fd, const std::string& text) {
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

TEST_F(ReaderTest, StuckInputTimesOutNamingTheFileAndLineAndDestroyingDoesNotHang) {
  const std::string path = Path("stuck.tsv");
  const int fd = MakeHeldFifo(path);
  ASSERT_GE(fd, 0);
  // The header and two lines, then nothing: the prefetch thread blocks in read() after line 3
  // with half a batch, as on a hung network mount.
  WriteAll(fd, Lines({kHeader, NumberedLine(1), NumberedLine(2)}));
  WarningCollector warnings;
  std::unique_ptr<Reader> reader = Open({path}, 4, Config("read_timeout_seconds: 0.5\n"));
  ASSERT_NE(reader, nullptr);
  Batch batch;
  absl::Time start = absl::Now();
  EXPECT_FALSE(reader->Next(&batch));
  absl::Duration waited = absl::Now() - start;
  EXPECT_GE(waited, absl::Milliseconds(450));
  EXPECT_LT(waited, absl::Seconds(5));
  EXPECT_TRUE(absl::IsDeadlineExceeded(reader->status())) << reader->status();
  EXPECT_THAT(reader->status().message(),
              HasSubstr(absl::StrCat(path, ":3: no batch within read_timeout_seconds 0.5")));
  EXPECT_FALSE(reader->Next(&batch));  // done: no second wait
  EXPECT_TRUE(absl::IsDeadlineExceeded(reader->status())) << reader->status();

  // The prefetch thread is still in read(): the destructor abandons it after kReaderStopWait.
  start = absl::Now();
  reader.reset();
  EXPECT_LT(absl::Now() - start, kReaderStopWait + absl::Seconds(2));
  bool abandoned = false;
  for (const std::string& message : warnings.messages()) {
    abandoned |= message.find("abandoning its prefetch thread") != std::string::npos;
  }
  EXPECT_TRUE(abandoned);
  // Its read returns once the FIFO has no writer; it then ends on state it owns.
  close(fd);

  // A file nobody ever opens for writing blocks in open() itself: said so, naming it.
  const std::string unopened = Path("unopened.tsv");
  ASSERT_EQ(mkfifo(unopened.c_str(), 0600), 0);
  reader = Open({unopened}, 4, Config("read_timeout_seconds: 0.3\n"));
  ASSERT_NE(reader, nullptr);
  start = absl::Now();
  EXPECT_FALSE(reader->Next(&batch));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(absl::IsDeadlineExceeded(reader->status())) << reader->status();
  EXPECT_THAT(
      reader->status().message(),
      HasSubstr(absl::StrCat("input ", unopened, " did not open within read_timeout_seconds 0.3")));
  start = absl::Now();
  reader.reset();
  EXPECT_LT(absl::Now() - start, kReaderStopWait + absl::Seconds(2));
  // Unblock the abandoned open() so that the thread ends before the test's folder goes.
  const int unblock = open(unopened.c_str(), O_RDWR | O_CLOEXEC);
  absl::SleepFor(absl::Milliseconds(100));
  close(unblock);
}

// An input that opens but never sends its header is stuck reading it, not opening it.
TEST_F(ReaderTest, InputStuckBeforeItsHeaderTimesOutSayingSo) {
  const std::string path = Path("headless.tsv");
  const int fd = MakeHeldFifo(path);
  ASSERT_GE(fd, 0);
  std::unique_ptr<Reader> reader = Open({path}, 4, Config("read_timeout_seconds: 0.3\n"));
  ASSERT_NE(reader, nullptr);
  Batch batch;
  EXPECT_FALSE(reader->Next(&batch));
  EXPECT_TRUE(absl::IsDeadlineExceeded(reader->status())) << reader->status();
  EXPECT_THAT(reader->status().message(),
              HasSubstr(absl::StrCat(path, ": no batch within read_timeout_seconds 0.3; reading ",
                                     "its header is stuck")));
  close(fd);  // the blocked read returns (end of input) and the reader stops in time
  reader.reset();
}

TEST_F(ReaderTest, SlowButAliveInputDoesNotTimeOut) {
  const std::string path = Path("slow.tsv");
  const int fd = MakeHeldFifo(path);
  ASSERT_GE(fd, 0);
  constexpr int kLines = 30;
  std::unique_ptr<Reader> reader = Open({path}, 2, Config("read_timeout_seconds: 1\n"));
  ASSERT_NE(reader, nullptr);
  // One line every 100 ms: 3 s in all, three times read_timeout_seconds, but a batch of 2
  // lines comes every 200 ms.
  std::thread writer([fd] {
    WriteAll(fd, absl::StrCat(kHeader, "\n"));
    for (int i = 0; i < kLines; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      WriteAll(fd, absl::StrCat(NumberedLine(i), "\n"));
    }
    close(fd);
  });
  std::vector<Batch> batches = ReadAll(reader.get());
  writer.join();
  EXPECT_TRUE(reader->status().ok()) << reader->status();
  EXPECT_EQ(batches.size(), static_cast<size_t>(kLines / 2));
  EXPECT_EQ(reader->stats().samples, static_cast<uint64_t>(kLines));
  // The lines arrived in order, each once.
  std::vector<Batch> expected =
      ReadAll(Open({WritePlain("fast.tsv", NumberedFile(kLines))}, 2).get());
  EXPECT_TRUE(batches == expected);
}

}  // namespace
}  // namespace granary
