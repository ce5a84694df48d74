// What the tests of the input path (line source, batch parser, reader, MovieLens converter)
// share: a sample dataset config and lines of it, whole-batch equality, a folder per running
// test, plain and gzip text files in it, and opening and draining a Reader.
#ifndef GRANARY_TESTS_TESTING_READER_INPUT_H_
#define GRANARY_TESTS_TESTING_READER_INPUT_H_

#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/proto/dataset.pb.h"
#include "gtest/gtest.h"
#include "worker/batch.h"
#include "worker/reader.h"

namespace granary {

// A dataset config with a column of every role (and a sequence of every step-field kind), and
// lines of it under kHeader.
inline constexpr char kConfig[] = R"(
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
inline constexpr char kHeader[] = "click\tprice\titem\tuser\ttags\thistory\tnote";

inline proto::DatasetConfig Config(const std::string& extra = "") {
  proto::DatasetConfig config;
  absl::Status status = ParseTextProto(std::string(kConfig) + extra, "kConfig", &config);
  EXPECT_TRUE(status.ok()) << status;
  return config;
}

// One data line of kHeader's layout.
inline std::string Line(const std::string& click, const std::string& price, const std::string& item,
                        const std::string& user, const std::string& tags,
                        const std::string& history, const std::string& note = "n") {
  return absl::StrJoin({click, price, item, user, tags, history, note}, "\t");
}

// A line whose values all derive from `i`, so a sample identifies its line.
inline std::string NumberedLine(int i) {
  return Line(absl::StrCat(i % 2), absl::StrCat(i), absl::StrCat("i", i), "u", "a,b",
              absl::StrCat(i, ",g,", i % 5));
}

inline std::string Lines(const std::vector<std::string>& lines) {
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

inline std::string NumberedFile(int num_lines) {
  std::vector<std::string> lines = {kHeader};
  for (int i = 0; i < num_lines; ++i) lines.push_back(NumberedLine(i));
  return Lines(lines);
}

// Whole-batch equality: plain against gzip input, a batch before and after a bad line.
inline bool operator==(const FloatColumn& a, const FloatColumn& b) {
  return a.name == b.name && a.values == b.values && a.present == b.present;
}
inline bool operator==(const CategoricalColumn& a, const CategoricalColumn& b) {
  return a.name == b.name && a.keys == b.keys && a.present == b.present;
}
inline bool operator==(const MultiCategoricalColumn& a, const MultiCategoricalColumn& b) {
  return a.name == b.name && a.offsets == b.offsets && a.keys == b.keys;
}
inline bool operator==(const SequenceField& a, const SequenceField& b) {
  return a.name == b.name && a.kind == b.kind && a.keys == b.keys && a.values == b.values;
}
inline bool operator==(const SequenceColumn& a, const SequenceColumn& b) {
  return a.name == b.name && a.offsets == b.offsets && a.fields == b.fields;
}
inline bool operator==(const Batch& a, const Batch& b) {
  return a.size == b.size && a.labels == b.labels && a.numerics == b.numerics &&
         a.categoricals == b.categoricals && a.multi_categoricals == b.multi_categoricals &&
         a.sequences == b.sequences;
}

// A folder of the running test alone, created if missing: ctest runs tests as parallel
// processes, which must not share files. The test removes it.
inline std::string TestTempDir() {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/", test->test_suite_name(), ".",
                                 test->name(), ".", getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

// Writes `text` to `path` as it is; returns `path`.
inline std::string WritePlainFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Writes `text` to `path` gzip-compressed; returns `path`.
inline std::string WriteGzipFile(const std::string& path, const std::string& text) {
  gzFile file = gzopen(path.c_str(), "wb");
  EXPECT_NE(file, nullptr) << path;
  EXPECT_EQ(gzwrite(file, text.data(), text.size()), static_cast<int>(text.size()));
  EXPECT_EQ(gzclose(file), Z_OK);
  return path;
}

// Reader::Open with these options; a test failure and null if it fails.
inline std::unique_ptr<Reader> OpenReader(std::vector<std::string> files,
                                          const proto::DatasetConfig& config, int batch_size,
                                          int prefetch_batches = 2) {
  ReaderOptions options;
  options.batch_size = batch_size;
  options.prefetch_batches = prefetch_batches;
  absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open(config, std::move(files), options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  return reader.ok() ? std::move(*reader) : nullptr;
}

// Every batch `reader` gives until Next returns false.
inline std::vector<Batch> ReadAll(Reader* reader) {
  std::vector<Batch> batches;
  Batch batch;
  while (reader->Next(&batch)) batches.push_back(std::move(batch));
  return batches;
}

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_READER_INPUT_H_
