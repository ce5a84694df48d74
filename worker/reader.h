// Reader: streams samples from tab-separated files into columnar batches for training.
//
//   absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open(config, files, options);
//   Batch batch;
//   while ((*reader)->Next(&batch)) Train(batch);
//   absl::Status status = (*reader)->status();  // OK at the end of input, else why it stopped
//
// Input is the format of DESIGN.md "Input format" and common/proto/dataset.proto: each file
// (plain text or gzip, read by worker/line_source.h) has a header line naming its columns,
// then one sample per line (parsed by worker/batch_parser.h). Files are read in the given
// order and a batch may hold samples of two files. Line numbers count from 1 and include the
// header; in a partial InputSlice they count from the slice's first line ("<path> bytes B..E:n").
//
// A line that cannot be parsed (BatchParser says why: among others a NUMERIC value beyond
// max_abs_numeric, a label outside its ReaderOptions::label_domains, a SEQUENCE cell of more
// than max_sequence_steps steps), and a line longer than max_line_bytes (read past without
// being held, see worker/line_source.h), is logged as "file:line: reason"
// (LOG(WARNING) for the first kLoggedBadLines bad lines, then every kBadLineLogInterval-th),
// counted and skipped. Reading stops with DataLoss naming the file and the counts once more
// than min_lines_before_abort data lines were read and bad / read exceeds
// max_bad_line_fraction, or if the input ends with bad lines and no good one.
//
// A prefetch thread parses ahead: it holds at most ReaderOptions::prefetch_batches finished
// batches plus the one it is filling, and waits while the consumer is behind, so memory is
// bounded and parsing overlaps training.
//
// Every wait has a deadline. A Next that gets no batch within the config's read_timeout_seconds
// (default kDefaultReadTimeoutSeconds, common/config.h) returns false with status()
// DeadlineExceeded naming the file, and the line after which reading is stuck (a hung network
// mount, a FIFO nobody writes); the Reader is then done. The destructor waits up to
// kReaderStopWait for the prefetch thread to stop; a thread stuck in a read that does not return
// is detached ("abandoned", logged) and owns everything it still touches, so it ends safely
// whenever its read returns. Plain input is read with plain read() calls, so a slow source (a
// pipe, a slow mount) delivers its lines as they come, not only once a buffer is full.
//
// Thread-safe: Next, status and stats may be called from any threads concurrently (each batch
// goes to exactly one caller of Next).
#ifndef GRANARY_WORKER_READER_H_
#define GRANARY_WORKER_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/proto/dataset.pb.h"
#include "worker/batch.h"
#include "worker/batch_parser.h"

namespace granary {

// Defaults of the DatasetConfig fields of the same names.
inline constexpr double kDefaultMaxBadLineFraction = 0.01;
inline constexpr uint64_t kDefaultMinLinesBeforeAbort = 1000;
// Bad lines logged one by one before logging only every kBadLineLogInterval-th.
inline constexpr uint64_t kLoggedBadLines = 10;
inline constexpr uint64_t kBadLineLogInterval = 1000;
// How long ~Reader waits for the prefetch thread to stop before abandoning it (see above).
inline constexpr absl::Duration kReaderStopWait = absl::Seconds(2);

struct ReaderOptions {
  // Samples per batch (>= 1); only the last batch of the input may be smaller.
  int batch_size = 512;
  // Finished batches the prefetch thread may hold before it waits for Next() (>= 1).
  int prefetch_batches = 4;
  // The class ids each LABEL column may hold, from the tasks that read it (the trainer fills
  // them from the job's tasks); a label outside makes the line bad. Empty: any finite label.
  std::vector<LabelDomain> label_domains;
};

// Counts so far. lines, bad_lines, samples and files_done are published once per batch and
// exact once Next() returned false.
struct ReaderStats {
  uint64_t lines = 0;             // data lines read (headers excluded), good and bad
  uint64_t bad_lines = 0;         // lines skipped as unparseable
  uint64_t samples = 0;           // good lines, i.e. samples put into batches
  uint64_t batches_produced = 0;  // batches the prefetch thread finished, taken or not
  uint64_t files_done = 0;        // files (or slices) read to their end
  uint64_t skipped_lines = 0;     // data lines read past by InputSlice::skip_lines (not in lines)
  // The first kLoggedBadLines bad lines, as logged: "file:line: reason".
  std::vector<std::string> first_bad_lines;
};

// Part of an input file: the lines whose first byte lies in [begin, end) (end = 0: to the end
// of the file). Consecutive slices of a file therefore read each line exactly once, wherever
// they cut it. The header line is always read from the start of the file. Slices other than
// the whole file need a plain (not gzip) file, which can be read from the middle. The first
// skip_lines data lines of the slice (fewer if it has fewer) are read past without being parsed
// or counted as read (a work-queue chunk resuming after the worker training it died, at
// Chunk.skip_lines); line numbers in errors still count them, so they name the slice's lines.
struct InputSlice {
  std::string path;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t skip_lines = 0;

  bool whole_file() const { return begin == 0 && end == 0; }
  // How errors name it: the path, plus the byte range of a partial slice.
  std::string Name() const;
};

class Reader {
 public:
  // Validates `config` (as ValidateDatasetConfig) and `options` (label_domains as
  // BatchParser::CheckLabelDomains), checks that every file exists,
  // and starts the prefetch thread. InvalidArgument for a bad config or options, or a file
  // that is a directory; NotFound naming the first file that does not exist; DeadlineExceeded
  // naming the first file whose check did not return within read_timeout_seconds (a hung
  // mount: the check's thread is left behind, see worker/bounded_call.h). An empty `files`
  // gives an empty input.
  static absl::StatusOr<std::unique_ptr<Reader>> Open(const proto::DatasetConfig& config,
                                                      std::vector<std::string> files,
                                                      const ReaderOptions& options);
  // Reads the slices in order. InvalidArgument, naming the slice's file, for a partial slice of
  // a gzip file (reported once reading reaches it, by status()).
  static absl::StatusOr<std::unique_ptr<Reader>> Open(const proto::DatasetConfig& config,
                                                      std::vector<InputSlice> slices,
                                                      const ReaderOptions& options);

  // Stops the prefetch thread (abandons it after kReaderStopWait if it is stuck in a read);
  // batches not taken are dropped.
  virtual ~Reader() = default;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Blocks until the next batch is parsed and moves it into *batch (replacing its contents);
  // returns true. Returns false once every batch parsed before the end of the input or an
  // error was taken, or after waiting read_timeout_seconds for a batch; status() then says
  // which.
  virtual bool Next(Batch* batch) = 0;

  // OK while reading and at the end of the input; otherwise the error that stopped reading,
  // naming the file: NotFound or Unavailable (cannot open), DataLoss (unreadable or truncated
  // gzip, too many bad lines, no good line), InvalidArgument (header does not match the
  // config: a configured column missing, an unknown or repeated column, no header line, a
  // header longer than max_line_bytes), DeadlineExceeded (no batch within
  // read_timeout_seconds: names the file and the line after which reading is stuck).
  virtual absl::Status status() const = 0;

  virtual ReaderStats stats() const = 0;

 protected:
  Reader() = default;
};

}  // namespace granary

#endif  // GRANARY_WORKER_READER_H_
