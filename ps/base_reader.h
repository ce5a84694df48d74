// OpenBaseReader: one server's shard of a base (<base>/server-<rank>, a RocksDB checkpoint in
// this role's row format, ps/row_layout.h) read in place, for serving tables larger than memory
// (common/model_bundle.h, ServedTables::kRocksDb). RocksDB opens the folder read-only (nothing
// is copied or written), with each table's merge operator (a base may hold pushes not yet
// merged) and a block cache of `block_cache_bytes`; a read returns each row's values, never its
// metadata or optimizer slots.
//
// Thread-safe: the reader's Read from any number of threads at once.
#ifndef GRANARY_PS_BASE_READER_H_
#define GRANARY_PS_BASE_READER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base_shard_rows.h"
#include "common/proto/config.pb.h"

namespace granary {

// RocksDB's block cache of a served base shard by default (granary_serve --base_block_cache_mb).
constexpr size_t kDefaultBaseBlockCacheBytes = size_t{64} << 20;

// Opens `shard_dir` with `config`'s tables. NotFound if it is missing; FailedPrecondition
// naming the folder and table if it lacks a column family of `config`'s tables or RocksDB
// cannot open it; InvalidArgument if a table has no optimizer.
absl::StatusOr<std::unique_ptr<BaseShardRows>> OpenBaseReader(const proto::ClusterConfig& config,
                                                              const std::string& shard_dir,
                                                              size_t block_cache_bytes);

}  // namespace granary

#endif  // GRANARY_PS_BASE_READER_H_
