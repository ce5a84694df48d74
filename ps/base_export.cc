#include "ps/base_export.h"

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "ps/table_catalog.h"

namespace granary {

namespace {
// The copy is read once, front to back: a small row cache and memtable suffice.
constexpr size_t kExportCacheBytes = 16 << 20;
constexpr size_t kExportMemtableBytes = 8 << 20;
}  // namespace

absl::Status ExportBaseShard(const proto::ClusterConfig& config, const std::string& shard_dir,
                             int rank, const std::string& scratch_dir,
                             const std::string& delta_path) {
  TableCatalogOptions options;
  options.path = scratch_dir;
  options.restore_from = shard_dir;
  options.cache_bytes = kExportCacheBytes;
  options.memtable_bytes = kExportMemtableBytes;
  absl::Status status;
  {
    absl::StatusOr<std::unique_ptr<TableCatalog>> catalog = TableCatalog::Open(config, options);
    status = catalog.status();
    if (status.ok()) status = (*catalog)->ExportDelta(0, delta_path, rank).status();
  }
  std::error_code error;
  std::filesystem::remove_all(scratch_dir, error);
  return status;
}

}  // namespace granary
