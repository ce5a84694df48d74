// Record files: the one home for files that are a sequence of length-delimited Protobuf
// records (delta files, common/delta_file.h; vector files, common/vector_file.h).
//
// On disk each record is a varint32 length then the serialized message, exactly as
// google::protobuf::util::SerializeDelimitedToOstream writes it; nothing else is in the file.
// What the records mean (a header first, blocks, a footer with counts last) is the format's
// own business, on top of this module.
//
// Writing: a RecordWriter writes TemporaryPathOf(path) and Finish() publishes it as `path`
// (common/atomic_file.h), so `path` holds either its old contents or a complete new file,
// never a part, and a writer destroyed before Finish leaves nothing behind.
//
// Reading: every length read from a file is checked before anything is allocated for it: it
// must not exceed kMaxRecordBytes nor the bytes left in the file. Every error names the file
// and the index of the record (0 is the first).
//
// RecordWriter and RecordReader are thread-compatible: one thread at a time per object.
#ifndef GRANARY_COMMON_RECORD_FILE_H_
#define GRANARY_COMMON_RECORD_FILE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "google/protobuf/message_lite.h"

namespace granary {

// The largest record, in bytes after its length, that a writer writes and a reader accepts:
// Protobuf's own bound on a serialized message (2 GiB - 1), so that every file a writer ever
// produced still reads. A format keeps its records far smaller (blocks of bounded rows).
inline constexpr uint64_t kMaxRecordBytes = std::numeric_limits<int32_t>::max();

// Writes one record file and publishes it whole. Thread-compatible.
class RecordWriter {
 public:
  // Creates TemporaryPathOf(path), replacing it. Unavailable naming the path on failure.
  static absl::StatusOr<std::unique_ptr<RecordWriter>> Create(const std::string& path);
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;
  // Removes the temporary file unless Finish() succeeded.
  ~RecordWriter();

  // Appends `record`. InvalidArgument naming the path and the record index if it is larger
  // than kMaxRecordBytes; Unavailable if the write fails (disk full).
  absl::Status Write(const google::protobuf::MessageLite& record);

  // Closes the file and publishes it as path() (PublishFile: fsync, rename, fsync of the
  // folder). Unavailable naming the path on failure, after which path() keeps what it held.
  absl::Status Finish();

  const std::string& path() const { return path_; }

 private:
  explicit RecordWriter(std::string path);

  const std::string path_;
  const std::string temporary_;
  std::ofstream out_;
  uint64_t records_ = 0;
  bool published_ = false;
};

// Reads one record file, record by record, checking each length before it allocates.
// Thread-compatible.
class RecordReader {
 public:
  // Opens `path`. NotFound naming the path and `what` (e.g. "delta file") if it cannot be
  // opened.
  static absl::StatusOr<std::unique_ptr<RecordReader>> Open(const std::string& path,
                                                            absl::string_view what);
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // Reads the next record into `record` (cleared first). Returns true if one was read, false
  // (OK) if the file ends cleanly before it; DataLoss (Corrupt) if the file ends inside it,
  // its length exceeds kMaxRecordBytes or the bytes left in the file, or it does not parse.
  absl::StatusOr<bool> Read(google::protobuf::MessageLite* record);

  // A DataLoss error "<path>, record <index>: <what>" for the record last read (or about to
  // be read), for the checks a format makes of its records.
  absl::Status Corrupt(absl::string_view what) const;

  const std::string& path() const { return path_; }

 private:
  RecordReader(std::string path, uint64_t file_bytes);

  const std::string path_;
  const uint64_t file_bytes_;
  std::ifstream in_;
  std::unique_ptr<google::protobuf::io::IstreamInputStream> stream_;
  uint64_t records_read_ = 0;
  uint64_t index_ = 0;  // of the record last read or being read, for errors
};

// Bulk arrays travel in Protobuf `bytes` fields as raw little-endian elements, never as
// repeated fields (see common/proto/delta.proto, vectors.proto).

// Appends `values` to `bytes` as raw elements.
template <typename T>
void AppendRawArray(absl::Span<const T> values, std::string* bytes) {
  bytes->append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// Appends the raw elements held by `bytes` to `out`. False (and `out` unchanged) if
// bytes.size() is not a whole number of elements.
template <typename T>
bool AppendDecodedArray(const std::string& bytes, std::vector<T>* out) {
  if (bytes.size() % sizeof(T) != 0) return false;
  const size_t old_size = out->size();
  out->resize(old_size + bytes.size() / sizeof(T));
  if (!bytes.empty()) std::memcpy(out->data() + old_size, bytes.data(), bytes.size());
  return true;
}

}  // namespace granary

#endif  // GRANARY_COMMON_RECORD_FILE_H_
