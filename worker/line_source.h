// LineSource: the lines of one text file, plain or gzip, read in large blocks. The worker's
// one way to read a text file line by line: the Reader's input, the MovieLens converter's, the
// trainer's evaluation files.
//
//   absl::StatusOr<LineSource> source = LineSource::Open(path);
//   std::string_view line;
//   while (source->NextLine(&line)) Use(line, source->line_number());
//   absl::Status status = source->status();  // OK at the end of the file, else why it stopped
//
// Plain and gzip are told apart by the gzip magic bytes 1f 8b, never by the file name. The file
// is read with read(2), which returns what is there: lines of a slow source (a pipe, a slow
// mount) come as they arrive, not once a buffer is full. A read that never returns (a hung
// mount) blocks NextLine; the Reader's read_timeout_seconds bounds the wait for it. A line
// ends at "\n" or "\r\n" (neither is part of it); an unterminated last line is a line, except
// at the end of a truncated gzip stream, where it is dropped (its rest was lost) and the file
// is reported truncated. Line numbers count from 1.
//
// With a max_line_bytes bound, a longer line is read past in chunks, never held whole: NextLine
// returns it empty with line_too_long() true, and the line buffer stays within
// max(kLineBufferBytes, 2 * (max_line_bytes + 1)) bytes.
//
// Not thread-safe: one thread reads a LineSource at a time. Movable, not copyable.
#ifndef GRANARY_WORKER_LINE_SOURCE_H_
#define GRANARY_WORKER_LINE_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace granary {

// Initial size of the line buffer; it doubles for longer lines (up to the max_line_bytes bound).
inline constexpr size_t kLineBufferBytes = size_t{1} << 20;

class LineSource {
 public:
  // Opens `path` for reading. An errno-derived status naming the file if it cannot be opened
  // (NotFound if it does not exist). max_line_bytes: lines longer than this many bytes (without
  // the line break) are skipped, see line_too_long(); 0 = no bound.
  static absl::StatusOr<LineSource> Open(const std::string& path, uint64_t max_line_bytes = 0);

  ~LineSource();
  LineSource(LineSource&&) noexcept;
  LineSource& operator=(LineSource&&) noexcept;

  // Sets *line to the next line; it stays valid until the next call of NextLine or
  // SkipToLineAt. Returns false at the end of the file or on an error (status() says which).
  bool NextLine(std::string_view* line);

  // Whether the line NextLine returned last was longer than max_line_bytes (it was returned
  // empty: its bytes were read past, not kept).
  bool line_too_long() const;

  // Bytes the line buffer holds now (for tests of the memory bound).
  size_t buffer_bytes() const;

  // The number of the line NextLine returned last: 1 for the first line of the file, or for the
  // first line after SkipToLineAt; 0 before either.
  uint64_t line_number() const;

  // File offset of the first byte of the line NextLine returns next.
  uint64_t next_line_offset() const;

  // Positions the source at the first line that starts at or after byte `offset` (> 0) and
  // restarts line numbers there, so that consecutive byte ranges of a file read each line
  // exactly once wherever they cut it. InvalidArgument naming the file for a gzip file (it
  // cannot be read from the middle); an errno-derived status if seeking or reading fails.
  absl::Status SkipToLineAt(uint64_t offset);

  // OK while reading and at the end of the file; otherwise the error that stopped NextLine,
  // naming the file: an errno-derived status for a failed read, DataLoss for an unreadable or
  // truncated gzip stream.
  const absl::Status& status() const;

  const std::string& path() const;

 private:
  struct State;
  explicit LineSource(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

// Calls `line_fn(line, line_number)` for every line of the plain or gzip file `path`, in order.
// Returns the first error line_fn returns (reading stops there), else LineSource's errors of
// opening and reading `path`, else OK.
absl::Status ForEachLine(
    const std::string& path,
    absl::FunctionRef<absl::Status(std::string_view line, uint64_t line_number)> line_fn);

}  // namespace granary

#endif  // GRANARY_WORKER_LINE_SOURCE_H_
