// Delta files: the rows a server changed since a data version, for serving copies.
//
// File layout: a sequence of length-delimited Protobuf DeltaRecord messages (varint32 length
// then the message, as google::protobuf::util::SerializeDelimitedToOstream writes them):
//
//   header  (DeltaHeader: format "granary-delta-v1", server rank, since/until versions)
//   block*  (DeltaBlock: one table's changed rows — keys uint64[n] and values float[n*dim] as
//            raw little-endian bytes — and its eviction tombstones uint64[m])
//   footer  (DeltaFooter: counts of blocks, rows and tombstones)
//
// A file without its footer, or whose counts disagree with its blocks, is truncated or
// corrupt and is rejected as a whole. Applying a server's base checkpoint and then its
// deltas in version order, upserting rows and deleting tombstoned keys, reproduces the
// server's tables exactly (row values; optimizer state is not exported).
//
// Thread-compatible.
#ifndef GRANARY_COMMON_DELTA_FILE_H_
#define GRANARY_COMMON_DELTA_FILE_H_

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/proto/delta.pb.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"

namespace granary {

inline constexpr char kDeltaFormat[] = "granary-delta-v1";

class DeltaWriter {
 public:
  // Creates `path` (replacing it) and writes the header. Unavailable naming the path on
  // failure.
  static absl::StatusOr<std::unique_ptr<DeltaWriter>> Create(const std::string& path,
                                                             const proto::DeltaHeader& header);

  // Buffers one changed row of `table`; blocks are written as they fill.
  absl::Status AddRow(const std::string& table, int dim, uint64_t key, const float* values);
  absl::Status AddTombstone(const std::string& table, int dim, uint64_t key);

  // Writes the last block and the footer, and closes the file. The file is complete only
  // after Finish() returned OK.
  absl::Status Finish();

  uint64_t rows() const { return rows_; }
  uint64_t tombstones() const { return tombstones_; }

 private:
  static constexpr size_t kRowsPerBlock = 65536;
  explicit DeltaWriter(std::string path) : path_(std::move(path)) {}
  absl::Status SwitchTable(const std::string& table, int dim);
  absl::Status WriteBlock();
  absl::Status WriteRecord(const proto::DeltaRecord& record);

  std::string path_;
  std::ofstream out_;
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

class DeltaReader {
 public:
  // Opens `path` and reads its header. NotFound / DataLoss naming the path.
  static absl::StatusOr<std::unique_ptr<DeltaReader>> Open(const std::string& path);

  const proto::DeltaHeader& header() const { return header_; }

  // Reads the next block into `block`; returns false (with OK status) after the footer was
  // read and verified. DataLoss naming the path and block number if the file is truncated
  // or a block is malformed.
  absl::StatusOr<bool> Next(DeltaTableBlock* block);

 private:
  explicit DeltaReader(std::string path) : path_(std::move(path)) {}
  absl::Status Corrupt(const std::string& what) const;

  std::string path_;
  std::ifstream in_;
  std::unique_ptr<google::protobuf::io::IstreamInputStream> stream_;
  proto::DeltaHeader header_;
  uint64_t blocks_ = 0, rows_ = 0, tombstones_ = 0;
  bool done_ = false;
};

}  // namespace granary

#endif  // GRANARY_COMMON_DELTA_FILE_H_
