// TableCatalog: everything a server stores — its RocksDB (ps/row_store.h), one
// EmbeddingTable per configured table, the current training day and data version — and the
// whole-server operations on them: checkpoint, restore, shrink (day close) and delta export.
//
// Data-plane requests hold LockForRequest() (shared) while they run; whole-server operations
// take the lock exclusively, so a checkpoint or export is a consistent cut: no push is half
// applied, and every slot of every row is from the same moment.
//
// Thread-safe, on two conditions the catalog cannot check: every pull and push holds
// LockForRequest() while it runs, and ExportNextDelta calls do not overlap (each reads where
// the previous one ended before taking the lock; the server carries out one order at a time).
#ifndef GRANARY_PS_TABLE_CATALOG_H_
#define GRANARY_PS_TABLE_CATALOG_H_

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "common/proto/message.pb.h"
#include "ps/embedding_table.h"
#include "ps/row_store.h"

namespace granary {

struct TableCatalogOptions {
  // The server's own RocksDB folder (e.g. <data_dir>/server-<rank>).
  std::string path;
  // RowCache budget shared by all tables (see TableConfig.cache_bytes); default 1 GiB.
  // A server's memory is about cache_bytes + memtable_bytes + RocksDB's 32 MiB block cache.
  size_t cache_bytes = size_t{1} << 30;
  // Bound on RocksDB's memtables (RowStoreOptions::memtable_bytes).
  size_t memtable_bytes = 64 << 20;
  // If non-empty: replace `path` with a copy of this checkpoint folder before opening.
  std::string restore_from;
  int shards_per_table = EmbeddingTable::kDefaultShards;
  // Not owned; tests inject file-system faults through it.
  rocksdb::Env* env = nullptr;
};

struct DeltaSummary {
  uint64_t since_version = 0;
  uint64_t until_version = 0;
  uint64_t rows = 0;
  uint64_t tombstones = 0;
};

class TableCatalog {
 public:
  // Opens (or restores, then opens) the store and creates the tables of `config`.
  // Errors name the path and the table.
  static absl::StatusOr<std::unique_ptr<TableCatalog>> Open(const proto::ClusterConfig& config,
                                                            const TableCatalogOptions& options);
  TableCatalog(const TableCatalog&) = delete;
  TableCatalog& operator=(const TableCatalog&) = delete;

  // The table named `name`, or null.
  EmbeddingTable* Find(const std::string& name) const;
  const std::vector<std::unique_ptr<EmbeddingTable>>& tables() const { return tables_; }
  const std::string& path() const { return store_->path(); }

  // Held (shared) by every pull and push for its whole duration.
  std::shared_lock<std::shared_mutex> LockForRequest() { return std::shared_lock(cut_mutex_); }

  // The day stamped on pushed rows (Shrink's "today").
  void SetDay(uint32_t day) { stamp_.day = day; }
  uint32_t day() const { return stamp_.day.load(); }
  // Version stamped on rows changed now.
  uint64_t version() const { return stamp_.version.load(); }

  // Flushes every table and writes a consistent, openable copy of the whole store into `dir`
  // (which must not exist yet).
  absl::Status Checkpoint(const std::string& dir);

  // Day close of day(): Shrink of every table (see EmbeddingTable::Shrink), then a new data
  // version, written together with the day's DayCloseRecord (common/proto/message.proto): the
  // day shrunk, its counts, and the since-version of its delta. Once a day is shrunk, Shrink
  // for it again (a re-run of the close on a store restored from a checkpoint taken after the
  // Shrink) changes nothing and returns the recorded counts with already_shrunk set: decay
  // and eviction apply once per day.
  absl::StatusOr<std::vector<ShrinkReport>> Shrink();

  // Writes to `path` (common/delta_file.h) every row changed and every key evicted with a
  // version in (since_version, version()], then starts a new version. The returned
  // until_version is the since_version of the next delta.
  absl::StatusOr<DeltaSummary> ExportDelta(uint64_t since_version, const std::string& path,
                                           int server_rank);

  // The delta of day(): ExportDelta since the export marker as the day began, then the marker
  // (recorded in the store) moves to the returned until_version. The day's since-version is
  // kept in its DayCloseRecord (written by Shrink, or here if the day was not shrunk), so an
  // export of the same day again — a re-run of its close from a checkpoint taken after the
  // first export — again holds every change of the day, not only those since that export.
  // Consecutive days' deltas chain: a checkpoint taken after a day's export, plus the next
  // days' deltas in order, equals the live tables.
  absl::StatusOr<DeltaSummary> ExportNextDelta(const std::string& path, int server_rank);

  uint64_t RocksDbBytesWritten() const { return store_->BytesWritten(); }

 private:
  TableCatalog() = default;
  // Advances the data version and persists it. REQUIRES: cut_mutex_ held exclusively.
  absl::Status AdvanceVersion();
  // The until_version of the last ExportNextDelta (0 if none).
  absl::StatusOr<uint64_t> ExportedVersion() const;
  // The record of day()'s close: the stored one if it is of day(), else a new one starting
  // at ExportedVersion().
  absl::StatusOr<proto::DayCloseRecord> DayCloseOfToday() const;

  std::unique_ptr<RowStore> store_;
  UpdateStamp stamp_;
  std::vector<std::unique_ptr<EmbeddingTable>> tables_;
  std::map<std::string, EmbeddingTable*> by_name_;
  std::shared_mutex cut_mutex_;
};

}  // namespace granary

#endif  // GRANARY_PS_TABLE_CATALOG_H_
