// BaseShardRows: one server's shard of a base (bases/<day>/server-<rank>) read in place, for a
// model bundle that serves tables larger than memory (common/model_bundle.h,
// ServedTables::kRocksDb). The rows are in the parameter server's format, which only ps/ knows
// (DESIGN.md layering), so ps/base_reader.h implements it and the bundle takes it by a factory.
//
// Thread-safe: Read from any number of threads at once.
#ifndef GRANARY_COMMON_BASE_SHARD_ROWS_H_
#define GRANARY_COMMON_BASE_SHARD_ROWS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace granary {

class BaseShardRows {
 public:
  virtual ~BaseShardRows() = default;

  // The tables of the shard, and the dim of `table`'s rows, or -1 if the shard has no such table.
  virtual std::vector<std::string> tables() const = 0;
  virtual int dim(const std::string& table) const = 0;

  // For each keys[i] with a row in `table`, writes its dim values (not its optimizer slots) to
  // rows[i * dim, (i + 1) * dim) and sets found[i] to true; found[i] is false where there is
  // none (rows untouched). One batched read per call. DataLoss or Unavailable naming the table
  // and folder if the shard cannot be read.
  virtual absl::Status Read(const std::string& table, absl::Span<const uint64_t> keys, float* rows,
                            bool* found) const = 0;
};

}  // namespace granary

#endif  // GRANARY_COMMON_BASE_SHARD_ROWS_H_
