// ExportBaseShard: every row of one server's shard of a base or checkpoint
// (<base>/server-<rank>, a RocksDB checkpoint in this role's row format, ps/row_layout.h) as a
// delta file (common/delta_file.h), the format readers outside ps/ read rows in. A serving
// copy (common/model_bundle.h) loads a base through it without knowing RocksDB's rows.
//
// Thread-safe: a pure function of its arguments and the files it names.
#ifndef GRANARY_PS_BASE_EXPORT_H_
#define GRANARY_PS_BASE_EXPORT_H_

#include <string>

#include "absl/status/status.h"
#include "common/proto/config.pb.h"

namespace granary {

// Copies `shard_dir` to `scratch_dir` (which it replaces, and removes after; the base is never
// opened for writing), opens the copy with `config`'s tables and their merge operators (a base
// may hold pushes not yet merged) and writes every stored row to `delta_path` as the delta of
// server `rank` since version 0 (its tombstones are the shard's past evictions, not changes to
// apply to its rows). Errors name the folder or file: NotFound if `shard_dir` is missing, else
// the errors of TableCatalog::Open and ExportDelta.
absl::Status ExportBaseShard(const proto::ClusterConfig& config, const std::string& shard_dir,
                             int rank, const std::string& scratch_dir,
                             const std::string& delta_path);

}  // namespace granary

#endif  // GRANARY_PS_BASE_EXPORT_H_
