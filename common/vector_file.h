// Vector files: the user or item vectors a retrieval model exports for serving (a nearest-
// neighbour index over item vectors, queried with user vectors).
//
// File layout, the house way of delta_file.h: a record file (common/record_file.h) of
// VectorRecord messages (common/proto/vectors.proto):
//
//   header  (VectorFileHeader: format "granary-vectors-v1", kind USER or ITEM, dim, source)
//   block*  (VectorBlock: keys uint64[n] and values float[n * dim], raw little-endian bytes)
//   footer  (VectorFooter: counts of blocks and vectors)
//
// A key is the feature key of the user or item id (common/feature_key.h), so a server that
// hashes a request's id the same way finds its vector. A file without its footer, or whose
// counts disagree with its blocks, is truncated or corrupt and is rejected as a whole; a writer
// publishes the file only once it is complete.
//
// Thread-compatible.
#ifndef GRANARY_COMMON_VECTOR_FILE_H_
#define GRANARY_COMMON_VECTOR_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/proto/vectors.pb.h"
#include "common/record_file.h"

namespace granary {

inline constexpr char kVectorFormat[] = "granary-vectors-v1";

class VectorFileWriter {
 public:
  // Starts the file that Finish() publishes as `path` (RecordWriter: written under a temporary
  // name, so `path` keeps what it held until then) and writes the header with its format set.
  // InvalidArgument if header.dim() is 0; Unavailable naming the path if the file cannot be
  // written.
  static absl::StatusOr<std::unique_ptr<VectorFileWriter>> Create(
      const std::string& path, const proto::VectorFileHeader& header);
  VectorFileWriter(const VectorFileWriter&) = delete;
  VectorFileWriter& operator=(const VectorFileWriter&) = delete;

  // Buffers one vector; blocks are written as they fill. InvalidArgument if
  // values.size() != dim; Unavailable on a write error.
  absl::Status Add(uint64_t key, absl::Span<const float> values);

  // Writes the last block and the footer and publishes the file as `path`. The file exists
  // under `path` only after Finish() returned OK; a writer destroyed before leaves no file.
  absl::Status Finish();

 private:
  static constexpr size_t kVectorsPerBlock = 65536;
  VectorFileWriter(std::unique_ptr<RecordWriter> records, uint32_t dim)
      : records_(std::move(records)), dim_(dim) {}
  absl::Status WriteBlock();

  const std::unique_ptr<RecordWriter> records_;
  const uint32_t dim_;
  proto::VectorBlock block_;
  size_t block_vectors_ = 0;
  uint64_t blocks_ = 0;
  uint64_t vectors_ = 0;
};

// A whole vector file, read into memory.
struct VectorSet {
  proto::VectorFileHeader header;
  std::vector<uint64_t> keys;
  std::vector<float> values;  // keys.size() * header.dim(), row-major
};

// Reads and verifies the file at `path`. NotFound if it cannot be opened; DataLoss naming the
// path and the record index if it lacks the header or the footer, a block is malformed or the
// footer's counts disagree with the blocks.
absl::StatusOr<VectorSet> ReadVectorFile(const std::string& path);

}  // namespace granary

#endif  // GRANARY_COMMON_VECTOR_FILE_H_
