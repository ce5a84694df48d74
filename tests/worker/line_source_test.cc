#include "worker/line_source.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/reader_input.h"

namespace granary {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class LineSourceTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(TestTempDir()); }

  static std::string Path(const std::string& name) { return TestTempDir() + "/" + name; }

  // Every line of `source` from where it stands, each as "<line number>:<line>".
  static std::vector<std::string> NumberedLines(LineSource* source) {
    std::vector<std::string> lines;
    std::string_view line;
    while (source->NextLine(&line)) {
      lines.push_back(absl::StrCat(source->line_number(), ":", std::string(line)));
    }
    return lines;
  }
};

TEST_F(LineSourceTest, LinesComeWithoutTheirEndsAndNumberedFromOne) {
  const std::string text = "a\r\nbb\n\n\r\nlast";  // CRLF, LF, empty lines, no final newline
  for (const std::string& path :
       {WritePlainFile(Path("plain.gz"), text), WriteGzipFile(Path("gzip.txt"), text)}) {
    absl::StatusOr<LineSource> source = LineSource::Open(path);
    ASSERT_TRUE(source.ok()) << source.status();
    EXPECT_EQ(source->path(), path);
    EXPECT_EQ(source->line_number(), 0u);
    EXPECT_EQ(source->next_line_offset(), 0u);
    std::string_view line;
    ASSERT_TRUE(source->NextLine(&line));
    EXPECT_EQ(line, "a");
    EXPECT_EQ(source->next_line_offset(), 3u);
    EXPECT_THAT(NumberedLines(&*source), ElementsAre("2:bb", "3:", "4:", "5:last")) << path;
    EXPECT_FALSE(source->NextLine(&line));
    EXPECT_TRUE(source->status().ok()) << source->status();
  }
}

// Concatenated gzip members (`cat a.gz b.gz`) read as one text, as gunzip reads them; a
// one-byte file is plain.
TEST_F(LineSourceTest, ConcatenatedGzipMembersReadAsOneText) {
  const std::string a = WriteGzipFile(Path("a.gz"), "one\ntw");
  const std::string b = WriteGzipFile(Path("b.gz"), "o\nthree\n");
  std::string both;
  for (const std::string& path : {a, b}) {
    std::ifstream in(path, std::ios::binary);
    both.append(std::istreambuf_iterator<char>(in), {});
  }
  absl::StatusOr<LineSource> source = LineSource::Open(WritePlainFile(Path("ab.gz"), both));
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_THAT(NumberedLines(&*source), ElementsAre("1:one", "2:two", "3:three"));
  EXPECT_TRUE(source->status().ok()) << source->status();

  source = LineSource::Open(WritePlainFile(Path("one"), "x"));
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_THAT(NumberedLines(&*source), ElementsAre("1:x"));
  EXPECT_TRUE(source->status().ok()) << source->status();
}

TEST_F(LineSourceTest, LinesLongerThanTheBufferAreWhole) {
  const std::string longest(3 << 20, 'x');  // three times the initial buffer
  absl::StatusOr<LineSource> source =
      LineSource::Open(WriteGzipFile(Path("long.gz"), absl::StrCat("a\n", longest, "\nb\n")));
  ASSERT_TRUE(source.ok()) << source.status();
  std::string_view line;
  ASSERT_TRUE(source->NextLine(&line));
  ASSERT_TRUE(source->NextLine(&line));
  EXPECT_EQ(line, longest);
  ASSERT_TRUE(source->NextLine(&line));
  EXPECT_EQ(line, "b");
  EXPECT_FALSE(source->NextLine(&line));
  EXPECT_TRUE(source->status().ok()) << source->status();
}

TEST_F(LineSourceTest, LinesLongerThanTheBoundAreReadPastWithBoundedMemory) {
  constexpr uint64_t kMax = 1000;
  const std::string huge(2 << 20, 'x');  // 2 MiB, twice the initial buffer
  const std::string text =
      absl::StrCat("a\n", huge, "\r\n", std::string(kMax, 'y'), "\r\n", std::string(kMax + 1, 'z'),
                   "\nb\n", huge);  // the last line, too long, is unterminated
  for (const std::string& path :
       {WritePlainFile(Path("long.txt"), text), WriteGzipFile(Path("long.gz"), text)}) {
    absl::StatusOr<LineSource> source = LineSource::Open(path, kMax);
    ASSERT_TRUE(source.ok()) << source.status();
    std::vector<std::string> lines;
    std::string_view line;
    while (source->NextLine(&line)) {
      lines.push_back(absl::StrCat(source->line_number(), ":",
                                   source->line_too_long() ? "too long" : std::string(line)));
      EXPECT_LE(source->buffer_bytes(), kLineBufferBytes) << path;
    }
    EXPECT_TRUE(source->status().ok()) << source->status();
    EXPECT_THAT(lines, ElementsAre("1:a", "2:too long", absl::StrCat("3:", std::string(kMax, 'y')),
                                   "4:too long", "5:b", "6:too long"))
        << path;
  }
  // A bound above the buffer lets the buffer grow to twice the bound, no further.
  const uint64_t big_max = kLineBufferBytes + 1;
  absl::StatusOr<LineSource> source = LineSource::Open(
      WritePlainFile(Path("longer.txt"), absl::StrCat(huge, huge, "\nb")), big_max);
  ASSERT_TRUE(source.ok()) << source.status();
  std::string_view line;
  ASSERT_TRUE(source->NextLine(&line));
  EXPECT_TRUE(source->line_too_long());
  EXPECT_LE(source->buffer_bytes(), 2 * (big_max + 1));
  ASSERT_TRUE(source->NextLine(&line));
  EXPECT_FALSE(source->line_too_long());
  EXPECT_EQ(line, "b");
}

// Byte ranges [begin, end) cut at any byte read every line exactly once, the line numbers
// restarting in each range.
TEST_F(LineSourceTest, RangesCutAtAnyByteReadEveryLineOnce) {
  const std::string text = "zero\none\n\ntwo22\nthree\n";
  const std::string path = WritePlainFile(Path("ranges.txt"), text);
  for (uint64_t cut = 1; cut <= text.size(); ++cut) {
    std::vector<std::string> lines;
    for (uint64_t begin = 0; begin < text.size(); begin += cut) {
      absl::StatusOr<LineSource> source = LineSource::Open(path);
      ASSERT_TRUE(source.ok()) << source.status();
      if (begin > 0) {
        ASSERT_TRUE(source->SkipToLineAt(begin).ok());
      }
      std::string_view line;
      uint64_t expected_number = 0;
      while (source->next_line_offset() < begin + cut && source->NextLine(&line)) {
        EXPECT_EQ(source->line_number(), ++expected_number);
        lines.emplace_back(line);
      }
      ASSERT_TRUE(source->status().ok()) << source->status();
    }
    EXPECT_THAT(lines, ElementsAre("zero", "one", "", "two22", "three")) << "cut " << cut;
  }
}

TEST_F(LineSourceTest, ARangeOfAGzipFileIsInvalid) {
  absl::StatusOr<LineSource> source =
      LineSource::Open(WriteGzipFile(Path("ranges.gz"), NumberedFile(20)));
  ASSERT_TRUE(source.ok()) << source.status();
  absl::Status status = source->SkipToLineAt(100);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr(Path("ranges.gz") + ": a byte range of a gzip file"));
}

TEST_F(LineSourceTest, TruncatedGzipIsDataLossAndItsCutLineIsDropped) {
  std::string full;
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&full, "line ", i, "\n");
  WriteGzipFile(Path("full.gz"), full);
  std::string compressed;
  {
    std::ifstream in(Path("full.gz"), std::ios::binary);
    compressed.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string path =
      WritePlainFile(Path("truncated.gz"), compressed.substr(0, compressed.size() / 2));
  absl::StatusOr<LineSource> source = LineSource::Open(path);
  ASSERT_TRUE(source.ok()) << source.status();
  std::string_view line;
  int next = 0;
  while (source->NextLine(&line)) ASSERT_EQ(line, absl::StrCat("line ", next++));
  EXPECT_GT(next, 0);
  EXPECT_LT(next, 20000);
  EXPECT_TRUE(absl::IsDataLoss(source->status())) << source->status();
  EXPECT_THAT(source->status().message(), HasSubstr(path + ": truncated gzip"));
}

TEST_F(LineSourceTest, OpenNamesAMissingFile) {
  absl::StatusOr<LineSource> source = LineSource::Open(Path("missing.txt"));
  EXPECT_TRUE(absl::IsNotFound(source.status())) << source.status();
  EXPECT_THAT(source.status().message(), HasSubstr(Path("missing.txt")));
  absl::Status status = ForEachLine(Path("missing.txt"), [](std::string_view, uint64_t) {
    ADD_FAILURE() << "a line of a missing file";
    return absl::OkStatus();
  });
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
}

TEST_F(LineSourceTest, ForEachLineStopsAtTheFirstError) {
  const std::string path = WritePlainFile(Path("each.txt"), "a\nb\nc\nd\n");
  std::vector<std::string> seen;
  absl::Status status = ForEachLine(path, [&](std::string_view line, uint64_t line_number) {
    seen.push_back(absl::StrCat(line_number, ":", std::string(line)));
    return line == "c" ? absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": c"))
                       : absl::OkStatus();
  });
  EXPECT_THAT(seen, ElementsAre("1:a", "2:b", "3:c"));
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_EQ(status.message(), path + ":3: c");

  seen.clear();
  status = ForEachLine(path, [&](std::string_view line, uint64_t line_number) {
    seen.push_back(absl::StrCat(line_number, ":", std::string(line)));
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_THAT(seen, ElementsAre("1:a", "2:b", "3:c", "4:d"));
}

}  // namespace
}  // namespace granary
