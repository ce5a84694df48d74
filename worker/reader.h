// Reader: streams samples from tab-separated files into columnar batches for training.
//
//   absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open(config, files, options);
//   Batch batch;
//   while ((*reader)->Next(&batch)) Train(batch);
//   absl::Status status = (*reader)->status();  // OK at the end of input, else why it stopped
//
// Input is the format of DESIGN.md "Input format" and common/proto/dataset.proto: each file
// (plain text or gzip, told apart by the gzip magic bytes 1f 8b, never by the file name) has a
// header line naming its columns, then one sample per line. Files are read in the given order
// and a batch may hold samples of two files. Line numbers count from 1 and include the header.
//
// A line that cannot be parsed (wrong number of cells, a LABEL/NUMERIC cell that is not a
// finite number, an empty token in a MULTI_CATEGORICAL list, a sequence step with the wrong
// number of fields, an empty or non-numeric step field) is logged as "file:line: reason"
// (LOG(WARNING) for the first kLoggedBadLines bad lines, then every kBadLineLogInterval-th),
// counted and skipped. Reading stops with DataLoss naming the file and the counts once more
// than min_lines_before_abort data lines were read and bad / read exceeds
// max_bad_line_fraction, or if the input ends with bad lines and no good one.
//
// A prefetch thread parses ahead: it holds at most ReaderOptions::prefetch_batches finished
// batches plus the one it is filling, and waits while the consumer is behind, so memory is
// bounded and parsing overlaps training.
//
// Thread-safe: Next, status and stats may be called from any threads concurrently (each batch
// goes to exactly one caller of Next).
#ifndef GRANARY_WORKER_READER_H_
#define GRANARY_WORKER_READER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "worker/batch.h"

namespace granary {

// Defaults of the DatasetConfig fields of the same names.
inline constexpr double kDefaultMaxBadLineFraction = 0.01;
inline constexpr uint64_t kDefaultMinLinesBeforeAbort = 1000;
// Bad lines logged one by one before logging only every kBadLineLogInterval-th.
inline constexpr uint64_t kLoggedBadLines = 10;
inline constexpr uint64_t kBadLineLogInterval = 1000;

// The hash space of a CATEGORICAL or MULTI_CATEGORICAL column: its hash_space, else its name.
// A token's key is FeatureKey(FieldSeed(hash space), token).
std::string ColumnHashSpace(const proto::ColumnConfig& column);
// The hash space of a CATEGORICAL step field: its hash_space, else "<column>.<step field>".
std::string StepFieldHashSpace(const proto::ColumnConfig& column,
                               const proto::StepFieldConfig& step_field);

struct ReaderOptions {
  // Samples per batch (>= 1); only the last batch of the input may be smaller.
  int batch_size = 512;
  // Finished batches the prefetch thread may hold before it waits for Next() (>= 1).
  int prefetch_batches = 4;
};

// Counts so far. lines, bad_lines and samples are published once per batch and exact once
// Next() returned false.
struct ReaderStats {
  uint64_t lines = 0;             // data lines read (headers excluded), good and bad
  uint64_t bad_lines = 0;         // lines skipped as unparseable
  uint64_t samples = 0;           // good lines, i.e. samples put into batches
  uint64_t batches_produced = 0;  // batches the prefetch thread finished, taken or not
  uint64_t files_done = 0;        // files read to their end
  // The first kLoggedBadLines bad lines, as logged: "file:line: reason".
  std::vector<std::string> first_bad_lines;
};

class BatchParser;

// Part of an input file: the lines whose first byte lies in [begin, end) (end = 0: to the end
// of the file). Consecutive slices of a file therefore read each line exactly once, wherever
// they cut it. The header line is always read from the start of the file. Slices other than
// the whole file need a plain (not gzip) file, which can be read from the middle.
struct InputSlice {
  std::string path;
  uint64_t begin = 0;
  uint64_t end = 0;

  bool whole_file() const { return begin == 0 && end == 0; }
  // How errors name it: the path, plus the byte range of a partial slice.
  std::string Name() const;
};

class Reader {
 public:
  // Validates `config` (as ValidateDatasetConfig) and `options`, checks that every file exists,
  // and starts the prefetch thread. InvalidArgument for a bad config or options, NotFound
  // naming the first file that does not exist. An empty `files` gives an empty input.
  static absl::StatusOr<std::unique_ptr<Reader>> Open(const proto::DatasetConfig& config,
                                                      std::vector<std::string> files,
                                                      const ReaderOptions& options);
  // Reads the slices in order. InvalidArgument, naming the slice, for a partial slice of a
  // gzip file (reported once reading reaches it, by status()).
  static absl::StatusOr<std::unique_ptr<Reader>> Open(const proto::DatasetConfig& config,
                                                      std::vector<InputSlice> slices,
                                                      const ReaderOptions& options);

  ~Reader();  // Stops the prefetch thread; batches not taken are dropped.
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Blocks until the next batch is parsed and moves it into *batch (replacing its contents);
  // returns true. Returns false once every batch parsed before the end of the input or an
  // error was taken; status() then says which.
  bool Next(Batch* batch);

  // OK while reading and at the end of the input; otherwise the error that stopped reading,
  // naming the file: NotFound or Unavailable (cannot open), DataLoss (unreadable or truncated
  // gzip, too many bad lines, no good line), InvalidArgument (header does not match the
  // config: a configured column missing, an unknown or repeated column, no header line).
  absl::Status status() const;

  ReaderStats stats() const;

 private:
  Reader(std::unique_ptr<const BatchParser> parser, std::vector<InputSlice> slices,
         const ReaderOptions& options, const proto::DatasetConfig& config);

  // The prefetch thread: reads every file, publishes batches, records the final status.
  void Run();
  // Reads one slice into *batch, publishing full batches. Returns the error that stops reading.
  absl::Status ReadSlice(const InputSlice& slice, Batch* batch);
  // Hands a full or final batch to the queue, waiting while it holds prefetch_batches.
  // Returns false if the reader is being destroyed.
  bool Publish(Batch* batch);
  void RecordBadLine(const std::string& path, uint64_t line_number, const std::string& reason);
  void Finish(absl::Status status);

  const std::unique_ptr<const BatchParser> parser_;
  const std::vector<InputSlice> files_;
  const ReaderOptions options_;
  const double max_bad_line_fraction_;
  const uint64_t min_lines_before_abort_;

  // Owned by the prefetch thread; published into stats_ by Publish and Finish.
  uint64_t lines_ = 0;
  uint64_t bad_lines_ = 0;
  uint64_t samples_ = 0;
  uint64_t files_done_ = 0;
  std::string first_bad_line_;  // as logged, for error messages

  mutable std::mutex mutex_;
  std::condition_variable batch_ready_;  // queue_ gained a batch, or finished_
  std::condition_variable space_ready_;  // queue_ lost a batch, or stopping_
  std::deque<Batch> queue_;
  bool finished_ = false;  // the prefetch thread published its last batch
  // The destructor runs. Written under mutex_ (for the condition variables); the prefetch
  // thread also polls it without the lock between lines.
  std::atomic<bool> stopping_ = false;
  absl::Status status_;
  ReaderStats stats_;

  std::thread thread_;  // last: started after every other member is ready
};

}  // namespace granary

#endif  // GRANARY_WORKER_READER_H_
