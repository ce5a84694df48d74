#include "worker/line_source.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace granary {
namespace {

// Bytes read from the file at a time into the input buffer (gzip input, and the first bytes of
// any file, read to tell gzip from plain).
constexpr size_t kInputBufferBytes = 256 << 10;
// zlib's windowBits for a gzip stream: the largest window (15) plus 16 for the gzip wrapper.
constexpr int kGzipWindowBits = 15 + 16;
// The first byte of a gzip stream's magic (1f 8b).
constexpr unsigned char kGzipMagic0 = 0x1f;
constexpr unsigned char kGzipMagic1 = 0x8b;

}  // namespace

// The file is read with read(2), which returns what is there, so lines of a slow source (a
// pipe, a slow mount) come as they arrive; gzip is inflated by zlib from those reads. (zlib's
// gzread would wait for a full buffer.)
struct LineSource::State {
  State(const std::string& path, uint64_t max_line_bytes)
      : path(path), max_line_bytes(max_line_bytes), buffer(kLineBufferBytes) {}
  ~State() {
    if (inflating) inflateEnd(&stream);
    if (fd >= 0) close(fd);
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

  // Reads what the file has (at least one byte unless at its end) into the empty input buffer.
  // Returns false on a read error.
  bool ReadInput() {
    ssize_t n;
    do {
      n = read(fd, input.data(), input.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      status = absl::ErrnoToStatus(errno, absl::StrCat(path, ": read failed"));
      return false;
    }
    stream.next_in = input.data();
    stream.avail_in = static_cast<uInt>(n);
    if (n == 0) input_eof = true;
    return true;
  }

  // Tells gzip from plain by the first two bytes (fewer only if the file is shorter), which
  // stay in the input buffer. Returns false on an error.
  bool Detect() {
    if (detected) return status.ok();
    detected = true;
    size_t have = 0;
    while (have < 2 && !input_eof) {
      ssize_t n;
      do {
        n = read(fd, input.data() + have, input.size() - have);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        status = absl::ErrnoToStatus(errno, absl::StrCat(path, ": read failed"));
        return false;
      }
      if (n == 0) input_eof = true;
      have += static_cast<size_t>(n);
    }
    stream.next_in = input.data();
    stream.avail_in = static_cast<uInt>(have);
    gzip = have >= 2 && input[0] == kGzipMagic0 && input[1] == kGzipMagic1;
    if (gzip) {
      if (inflateInit2(&stream, kGzipWindowBits) != Z_OK) {
        status = absl::ResourceExhaustedError(absl::StrCat(path, ": cannot start zlib"));
        return false;
      }
      inflating = true;
    }
    return true;
  }

  // Appends more bytes after the pending partial line: at least one, or sets eof. Returns
  // false on an error.
  bool Fill() {
    if (begin > 0) {
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      buffer_offset += begin;
      end -= begin;
      scanned -= begin;
      begin = 0;
    }
    if (end == buffer.size()) buffer.resize(buffer.size() * 2);
    if (!Detect()) return false;
    return gzip ? Inflate() : Copy();
  }

  // Plain: the bytes left from Detect, then reads straight into the line buffer.
  bool Copy() {
    if (stream.avail_in > 0) {
      const size_t n = std::min<size_t>(stream.avail_in, buffer.size() - end);
      std::memcpy(buffer.data() + end, stream.next_in, n);
      stream.next_in += n;
      stream.avail_in -= static_cast<uInt>(n);
      end += n;
      return true;
    }
    if (input_eof) {
      eof = true;
      return true;
    }
    ssize_t n;
    do {
      n = read(fd, buffer.data() + end, buffer.size() - end);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      status = absl::ErrnoToStatus(errno, absl::StrCat(path, ": read failed"));
      return false;
    }
    if (n == 0) input_eof = eof = true;
    end += static_cast<size_t>(n);
    return true;
  }

  bool Inflate() {
    while (true) {
      if (stream.avail_in == 0 && !input_eof && !ReadInput()) return false;
      if (!in_member) {
        // Between members: the end of the file, another member, or (as gzread) trailing bytes
        // that are not gzip, ignored.
        if (stream.avail_in == 0 || stream.next_in[0] != kGzipMagic0) {
          eof = true;
          return true;
        }
        inflateReset(&stream);
        in_member = true;
      }
      const size_t space = buffer.size() - end;
      stream.next_out = reinterpret_cast<Bytef*>(buffer.data() + end);
      stream.avail_out = static_cast<uInt>(space);
      const int result = inflate(&stream, Z_NO_FLUSH);
      const size_t produced = space - stream.avail_out;
      end += produced;
      if (result == Z_STREAM_END) {
        in_member = false;
      } else if (result != Z_OK && result != Z_BUF_ERROR) {
        status = absl::DataLossError(absl::StrCat(
            path, ": unreadable gzip: ", stream.msg != nullptr ? stream.msg : "inflate failed"));
        return false;
      }
      if (produced > 0) return true;
      if (in_member && input_eof && stream.avail_in == 0) {
        status = absl::DataLossError(
            absl::StrCat(path, ": truncated gzip (the file ends inside the stream)"));
        return false;
      }
    }
  }

  const std::string path;
  const uint64_t max_line_bytes;  // 0 = no bound
  bool too_long = false;          // the line last returned was over max_line_bytes
  int fd = -1;
  bool detected = false;  // gzip is known
  bool gzip = false;
  bool inflating = false;  // stream is initialized for inflate
  bool in_member = false;  // inside a gzip member (started, its end not yet seen)
  z_stream stream{};       // next_in/avail_in: the unread part of input, for plain files too
  std::vector<Bytef> input = std::vector<Bytef>(kInputBufferBytes);
  bool input_eof = false;  // read(2) returned 0
  std::vector<char> buffer;
  uint64_t buffer_offset = 0;  // file (or, gzip, text) offset of buffer[0]
  size_t begin = 0;            // start of the first line not yet returned
  size_t scanned = 0;          // [begin, scanned) holds no newline
  size_t end = 0;              // end of the bytes read
  bool eof = false;
  uint64_t line_number = 0;
  absl::Status status;
};

absl::StatusOr<LineSource> LineSource::Open(const std::string& path, uint64_t max_line_bytes) {
  auto state = std::make_unique<State>(path, max_line_bytes);
  do {
    state->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (state->fd < 0 && errno == EINTR);
  if (state->fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open input file"));
  }
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
  if (!s.Detect()) return s.status;
  if (s.gzip) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.path, ": a byte range of a gzip file cannot be read on its own"));
  }
  // The line holding byte offset - 1 belongs to the range before `offset`: skip its rest.
  if (lseek(s.fd, static_cast<off_t>(offset - 1), SEEK_SET) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(s.path, ": cannot seek to byte ", offset));
  }
  s.stream.avail_in = 0;
  s.input_eof = false;
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
