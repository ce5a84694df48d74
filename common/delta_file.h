// Delta files: the rows a server changed since a data version, for serving copies.
//
// File layout: a record file (common/record_file.h) of DeltaRecord messages
// (common/proto/delta.proto):
//
//   header  (DeltaHeader: format "granary-delta-v1", server rank, since/until versions)
//   block*  (DeltaBlock: one table's changed rows — keys uint64[n] and values float[n*dim] as
//            raw little-endian bytes — and its eviction tombstones uint64[m])
//   footer  (DeltaFooter: counts of blocks, rows and tombstones)
//
// A file without its footer, or whose counts disagree with its blocks, is truncated or
// corrupt and is rejected as a whole; a writer publishes the file only once it is complete.
// Applying a server's base checkpoint and then its
// deltas in version order, upserting rows and deleting tombstoned keys, reproduces the
// server's tables exactly (row values; optimizer state is not exported).
//
// Thread-compatible.
#ifndef GRANARY_COMMON_DELTA_FILE_H_
#define GRANARY_COMMON_DELTA_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/delta.pb.h"
#include "common/record_file.h"

namespace granary {

inline constexpr char kDeltaFormat[] = "granary-delta-v1";

// Writes one delta file. Thread-compatible.
class DeltaWriter {
 public:
  // Starts the file that Finish() publishes as `path` (RecordWriter: written under a temporary
  // name, so `path` keeps what it held until then) and writes the header with its format set.
  // Unavailable naming the path on failure.
  static absl::StatusOr<std::unique_ptr<DeltaWriter>> Create(const std::string& path,
                                                             const proto::DeltaHeader& header);
  DeltaWriter(const DeltaWriter&) = delete;
  DeltaWriter& operator=(const DeltaWriter&) = delete;

  // Buffers one changed row of `table` (`dim` floats at `values`), or one key of `table`
  // evicted, writing a block when it fills or the table changes. Unavailable naming the path
  // on a write error.
  absl::Status AddRow(const std::string& table, int dim, uint64_t key, const float* values);
  absl::Status AddTombstone(const std::string& table, int dim, uint64_t key);

  // Writes the last block and the footer and publishes the file as `path`. The file exists
  // under `path` only after Finish() returned OK; a writer destroyed before leaves no file.
  absl::Status Finish();

  uint64_t rows() const { return rows_; }
  uint64_t tombstones() const { return tombstones_; }

 private:
  static constexpr size_t kRowsPerBlock = 65536;
  explicit DeltaWriter(std::unique_ptr<RecordWriter> records) : records_(std::move(records)) {}
  absl::Status SwitchTable(const std::string& table, int dim);
  absl::Status WriteBlock();

  const std::unique_ptr<RecordWriter> records_;
  proto::DeltaBlock block_;
  size_t block_rows_ = 0;
  uint64_t blocks_ = 0;
  uint64_t rows_ = 0;
  uint64_t tombstones_ = 0;
};

// One block as read: its arrays decoded.
struct DeltaTableBlock {
  std::string table;
  int dim = 0;
  std::vector<uint64_t> keys;
  std::vector<float> values;  // keys.size() * dim
  std::vector<uint64_t> tombstones;
};

// Reads and verifies one delta file, block by block. Thread-compatible.
class DeltaReader {
 public:
  // Opens `path` and reads its header. NotFound naming the path if it cannot be opened;
  // DataLoss naming the path if it does not start with a granary-delta-v1 header.
  static absl::StatusOr<std::unique_ptr<DeltaReader>> Open(const std::string& path);
  DeltaReader(const DeltaReader&) = delete;
  DeltaReader& operator=(const DeltaReader&) = delete;

  const proto::DeltaHeader& header() const { return header_; }

  // Reads the next block into `block`; returns false (with OK status) after the footer was
  // read and verified. DataLoss naming the path and the record index if the file is truncated,
  // a block is malformed or the footer's counts disagree with the blocks.
  absl::StatusOr<bool> Next(DeltaTableBlock* block);

 private:
  DeltaReader(std::unique_ptr<RecordReader> records, proto::DeltaHeader header)
      : records_(std::move(records)), header_(std::move(header)) {}

  const std::unique_ptr<RecordReader> records_;
  const proto::DeltaHeader header_;
  uint64_t blocks_ = 0, rows_ = 0, tombstones_ = 0;
  bool done_ = false;
};

}  // namespace granary

#endif  // GRANARY_COMMON_DELTA_FILE_H_
