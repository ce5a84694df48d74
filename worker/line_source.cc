#include "worker/line_source.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace granary {
namespace {

// Bytes zlib reads from the file at a time.
constexpr unsigned kGzipBufferBytes = 256 << 10;

}  // namespace

// zlib reads gzip streams and, in its "transparent" mode, anything else as plain text.
struct LineSource::State {
  State(const std::string& path, uint64_t max_line_bytes)
      : path(path), max_line_bytes(max_line_bytes), buffer(kLineBufferBytes) {}
  ~State() {
    if (file != nullptr) gzclose(file);
  }

  bool NextLine(std::string_view* line) {
    too_long = false;
    while (true) {
      const char* newline =
          static_cast<const char*>(std::memchr(buffer.data() + scanned, '\n', end - scanned));
      if (newline != nullptr) {
        size_t at = newline - buffer.data();
        Return(Cut(begin, at), line);
        begin = scanned = at + 1;
        return true;
      }
      scanned = end;
      // Past the bound (a "\r" before the "\n" may still come off): drop what is read of the
      // line and go on reading until its end.
      if (max_line_bytes > 0 && end - begin > max_line_bytes + 1) {
        too_long = true;
        begin = scanned = end;
      }
      if (eof) {
        if (begin == end && !too_long) return false;
        Return(Cut(begin, end), line);
        begin = scanned = end;
        return true;
      }
      if (!Fill()) return false;
    }
  }

  // Returns `text` as the next line, or an empty line if it is (or was) too long.
  void Return(std::string_view text, std::string_view* line) {
    if (max_line_bytes > 0 && text.size() > max_line_bytes) too_long = true;
    *line = too_long ? std::string_view() : text;
    ++line_number;
  }

  std::string_view Cut(size_t from, size_t to) const {
    if (to > from && buffer[to - 1] == '\r') --to;
    return std::string_view(buffer.data() + from, to - from);
  }

  // Appends more bytes after the pending partial line. Returns false on a read error.
  bool Fill() {
    if (begin > 0) {
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      buffer_offset += begin;
      end -= begin;
      scanned -= begin;
      begin = 0;
    }
    if (end == buffer.size()) buffer.resize(buffer.size() * 2);
    int n = gzread(file, buffer.data() + end, static_cast<unsigned>(buffer.size() - end));
    int error = Z_OK;
    const char* message = gzerror(file, &error);
    if (n < 0) {
      status = error == Z_ERRNO
                   ? absl::ErrnoToStatus(errno, absl::StrCat(path, ": read failed"))
                   : absl::DataLossError(absl::StrCat(path, ": unreadable gzip: ", message));
      return false;
    }
    if (n == 0) {
      // zlib reports Z_BUF_ERROR when the input ended inside a gzip stream.
      if (error == Z_BUF_ERROR) {
        status = absl::DataLossError(
            absl::StrCat(path, ": truncated gzip (the file ends inside the stream)"));
        return false;
      }
      eof = true;
    }
    end += n;
    return true;
  }

  const std::string path;
  const uint64_t max_line_bytes;  // 0 = no bound
  bool too_long = false;          // the line last returned was over max_line_bytes
  gzFile file = nullptr;
  std::vector<char> buffer;
  uint64_t buffer_offset = 0;  // file offset of buffer[0]
  size_t begin = 0;            // start of the first line not yet returned
  size_t scanned = 0;          // [begin, scanned) holds no newline
  size_t end = 0;              // end of the bytes read
  bool eof = false;
  uint64_t line_number = 0;
  absl::Status status;
};

absl::StatusOr<LineSource> LineSource::Open(const std::string& path, uint64_t max_line_bytes) {
  auto state = std::make_unique<State>(path, max_line_bytes);
  state->file = gzopen(path.c_str(), "rb");
  if (state->file == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open input file"));
  }
  gzbuffer(state->file, kGzipBufferBytes);
  return LineSource(std::move(state));
}

LineSource::LineSource(std::unique_ptr<State> state) : state_(std::move(state)) {}
LineSource::~LineSource() = default;
LineSource::LineSource(LineSource&&) noexcept = default;
LineSource& LineSource::operator=(LineSource&&) noexcept = default;

bool LineSource::NextLine(std::string_view* line) { return state_->NextLine(line); }

bool LineSource::line_too_long() const { return state_->too_long; }

size_t LineSource::buffer_bytes() const { return state_->buffer.size(); }

uint64_t LineSource::line_number() const { return state_->line_number; }

uint64_t LineSource::next_line_offset() const { return state_->buffer_offset + state_->begin; }

absl::Status LineSource::SkipToLineAt(uint64_t offset) {
  State& s = *state_;
  if (gzdirect(s.file) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.path, ": a byte range of a gzip file cannot be read on its own"));
  }
  // The line holding byte offset - 1 belongs to the range before `offset`: skip its rest.
  if (gzseek(s.file, static_cast<z_off_t>(offset - 1), SEEK_SET) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(s.path, ": cannot seek to byte ", offset));
  }
  s.begin = s.scanned = s.end = 0;
  s.eof = false;
  s.buffer_offset = offset - 1;
  std::string_view rest_of_line;
  s.NextLine(&rest_of_line);
  s.line_number = 0;
  s.too_long = false;
  return s.status;
}

const absl::Status& LineSource::status() const { return state_->status; }

const std::string& LineSource::path() const { return state_->path; }

absl::Status ForEachLine(
    const std::string& path,
    absl::FunctionRef<absl::Status(std::string_view line, uint64_t line_number)> line_fn) {
  absl::StatusOr<LineSource> source = LineSource::Open(path);
  if (!source.ok()) return source.status();
  std::string_view line;
  while (source->NextLine(&line)) {
    absl::Status status = line_fn(line, source->line_number());
    if (!status.ok()) return status;
  }
  return source->status();
}

}  // namespace granary
