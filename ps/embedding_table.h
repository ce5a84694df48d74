// EmbeddingTable: one named table on one server — rows in RocksDB behind a write-back
// RowCache, the table's optimizer applied on push, feature admission, and eviction (Shrink).
//
// A row (ps/row_layout.h) is created on first touch with the table's deterministic
// initializer but only *stored* once a push admits it: until then it is the key's initial
// value, which needs no storage because it can always be recomputed. Evaluation pulls
// (read_only) create nothing, count nothing and touch no metadata; training pulls may cache
// rows; only pushes change rows and their metadata (show count, last day, update count,
// version).
//
// The cache is split into shards by key; a request locks each shard it touches once, fetches
// that shard's misses in one MultiGet and writes that shard's dirty victims in one WriteBatch
// while holding the lock, so no reader can see a row older than one being written back.
//
// A push to a row that a full cache does not hold need not read it: when the store holds the
// table's merge operator (NewMergeOperator, ps/push_merge_operator.h) and the table admits every
// key, the push (its gradient and stamp) is appended to the shard's in-memory PushLog, which the
// table's Spiller (ps/spiller.h) writes to RocksDB as merge operands while pushes and pulls go
// on. A pull of a row with logged pushes reads it and applies them; a row with sealed pushes
// (being spilled) is read as of the seal's snapshot, so a pull racing the ingest never sees a
// sealed push twice. Such a row is not cached until its pushes are in RocksDB, so pushes of one
// row are applied in the order they arrived, whether in the cache, in a log or as operands: the
// result is the same row either way. Training pulls read rows (pushes folded) and cache those a
// full cache admits (RowCache::AdmitMiss); the rest are read around the cache.
//
// Memory: the RowCache gets the budget but 1/kPushLogShare of it, which the shards' logs
// (an active and a sealed one each) get when the table merges pushes. A push that finds its
// log full waits for a spill, so the logs never grow past their share (but each holds at
// least 64 pushes, however small the budget).
//
// Thread-safe: Pull and Push may run concurrently from any threads. FlushDirtyRows, Shrink and
// ForEachStoredRow lock every shard and may run concurrently with them too, but the caller must
// exclude pushes when it needs a consistent cut across tables (see TableCatalog).
#ifndef GRANARY_PS_EMBEDDING_TABLE_H_
#define GRANARY_PS_EMBEDDING_TABLE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/proto/config.pb.h"
#include "ps/count_min_sketch.h"
#include "ps/optimizer.h"
#include "ps/push_merge_operator.h"
#include "ps/row_layout.h"
#include "ps/row_store.h"

namespace granary {

class Spiller;  // ps/spiller.h

// The day and data version stamped on rows a push changes; shared by a server's tables.
struct UpdateStamp {
  std::atomic<uint32_t> day{0};
  std::atomic<uint64_t> version{1};
};

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // keys looked up in RocksDB
  // Wall-clock nanoseconds spent serving those misses: reading them from RocksDB, making room
  // for the cached ones (writing dirty victims back) and filling their rows. miss_nanos /
  // misses is the cost of a miss (table_bench's miss_us).
  uint64_t miss_nanos = 0;
  // The same in CPU time of the serving thread: the cost of a miss whatever else shares the
  // cores (on a loaded machine the wall time also holds the waits for a core).
  uint64_t miss_cpu_nanos = 0;
  uint64_t pushes_merged = 0;  // pushes to uncached rows logged (then merge operands), unread
  uint64_t logged_pushes = 0;  // in PushLogs now, not yet in RocksDB
  uint64_t spills = 0;         // PushLog files ingested into RocksDB
  // Microseconds spills spent writing their file, and ingesting it and emptying the sealed
  // logs (shards locked only for that last step), and that pushes spent waiting for a spill
  // because they found a log full.
  uint64_t spill_write_micros = 0;
  uint64_t spill_ingest_micros = 0;
  uint64_t push_wait_micros = 0;
  uint64_t rows_written = 0;  // dirty rows written back (eviction or flush)
  uint64_t pushes_not_admitted = 0;
  // Pushes to cached rows that the optimizer refused because the row would have held a
  // non-finite value (Optimizer::Apply); the row kept its values. Pushes merged in RocksDB
  // are refused alike but not counted.
  uint64_t updates_refused = 0;
  uint64_t cached_rows = 0;
  uint64_t memory_bytes = 0;  // allocated by the cache shards and their push logs
};

struct ShrinkReport {
  std::string table;
  uint64_t kept = 0;
  uint64_t dropped = 0;
  // TableCatalog::Shrink of a day already shrunk: the counts are that Shrink's, nothing
  // changed now.
  bool already_shrunk = false;
};

class EmbeddingTable {
 public:
  static constexpr int kDefaultShards = 16;
  // A table that merges pushes gives 1/kPushLogShare of its cache budget to its PushLogs.
  static constexpr size_t kPushLogShare = 8;

  // `store_index` is this table's index in `store`. `cache_bytes` bounds the cache (at least
  // one row per shard is always kept). InvalidArgument if the config has no optimizer.
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Create(const proto::TableConfig& config,
                                                                RowStore* store, int store_index,
                                                                size_t cache_bytes,
                                                                const UpdateStamp* stamp,
                                                                int num_shards = kDefaultShards);
  // The merge operator a RowStore must hold for a table of `config` (RowStoreOptions::
  // merge_operators, keyed by config.name()) so that the table can write pushes to uncached
  // rows without reading them: NewPushMergeOperator (ps/push_merge_operator.h). Immutable, so
  // thread-safe. InvalidArgument if the config has no optimizer.
  static absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> NewMergeOperator(
      const proto::TableConfig& config) {
    return NewPushMergeOperator(config);
  }

  // Stops the spiller. Like dirty cached rows, logged pushes not flushed are dropped.
  ~EmbeddingTable();
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  const std::string& name() const { return config_.name(); }
  int dim() const { return layout_.dim(); }
  const RowLayout& layout() const { return layout_; }
  const proto::TableConfig& config() const { return config_; }

  // Writes keys.size() * dim floats into `values`. `read_only` (evaluation): rows are read
  // but never created, cached, counted or stamped. Errors name the table, key and RocksDB
  // path; on error `values` is unspecified.
  absl::Status Pull(absl::Span<const uint64_t> keys, float* values, bool read_only);

  // Applies one gradient row per key (keys.size() * dim floats). Repeated keys are applied in
  // order. A key not yet admitted is only counted. A row whose update would make a value or
  // optimizer slot non-finite keeps its values and slots (Optimizer::Apply); such refusals of
  // cached rows are counted in stats().updates_refused.
  absl::Status Push(absl::Span<const uint64_t> keys, const float* grads);

  // Writes every logged push and every dirty cached row to RocksDB (rows stay cached, now
  // clean).
  absl::Status FlushDirtyRows();

  // Day close: flushes, then decays every stored row's show count and deletes rows older
  // than ttl_days or below min_decayed_count, leaving a tombstone at `stamp->version`.
  // Empties the cache. Returns what was kept and dropped.
  absl::StatusOr<ShrinkReport> Shrink();

  // Flushes, then calls fn(key, record) for every stored row in key order. Stops at and
  // returns the first error of fn or RocksDB.
  absl::Status ForEachStoredRow(
      const std::function<absl::Status(uint64_t key, const char* record)>& fn);

  CacheStats stats() const;

 private:
  // A cache shard: its rows, its push logs (ShardPushLogs::mutex guards both) and counters.
  // Defined in the .cc.
  struct Shard;
  EmbeddingTable(const proto::TableConfig& config, RowStore* store, int store_index,
                 const UpdateStamp* stamp, std::unique_ptr<Optimizer> optimizer);

  // Groups key positions by shard and calls fn(shard, positions, lock) once per shard with the
  // shard locked by `lock`, one shard at a time: free shards first, a shard another request
  // holds after the others (so not in index order). fn may unlock and relock `lock`, but must
  // not keep it past its return. Stops at the first error; the shards served before it keep
  // their changes.
  template <typename Fn>
  absl::Status ForEachShard(absl::Span<const uint64_t> keys, Fn fn);
  // Writes every logged push and every dirty cached row to RocksDB. REQUIRES: spiller_->LockAll
  // held.
  absl::Status FlushLocked();
  // Flushes, then calls fn(key, record) with an aligned, writable copy of every stored row,
  // in key order. REQUIRES: spiller_->LockAll held.
  absl::Status ScanStoredRowsLocked(
      const std::function<absl::Status(uint64_t key, char* record)>& fn);
  // DataLoss naming the table, key and path unless `bytes` is this table's record size.
  absl::Status CheckRecordSize(uint64_t key, size_t bytes) const;
  // Looks up `keys` in RocksDB (skipped while the table has never stored a row), as of
  // `as_of` if not null; found rows' records are copied to `records` (row_bytes each). Errors
  // name table, key and path.
  absl::Status Fetch(absl::Span<const uint64_t> keys, const rocksdb::Snapshot* as_of,
                     std::vector<char>* records, std::vector<bool>* found);
  // Pull's reads around the cache: copies the values of keys[i] for i in `positions` (misses
  // of `shard`) into values[i * dim], read from RocksDB as of `as_of` (if not null) with their
  // logged pushes applied, or the initial value if not stored. REQUIRES: shard.mutex held.
  absl::Status ReadAround(Shard& shard, absl::Span<const uint64_t> keys,
                          absl::Span<const uint32_t> positions, const rocksdb::Snapshot* as_of,
                          bool read_only, float* values);
  // Splits `positions` (indexes into keys) of `shard` into hits, as (position, slot), and
  // misses. REQUIRES: shard.mutex held.
  void LookUp(Shard& shard, absl::Span<const uint64_t> keys, absl::Span<const uint32_t> positions,
              std::vector<std::pair<uint32_t, uint32_t>>* hits, std::vector<uint32_t>* misses);
  // Stamps `slot` as pushed and queues its update, unless the key is not admitted.
  void AddUpdate(Shard& shard, uint32_t slot, const float* grad, std::vector<RowUpdate>* updates);
  // Applies the logged pushes of `key` to `record`, oldest first. REQUIRES: shard.mutex held.
  void ApplyLoggedPushes(const Shard& shard, uint64_t key, char* record) const;
  // Appends the push of `grad` to `key` to the shard's active log. REQUIRES: shard.mutex held.
  void LogPush(Shard& shard, uint64_t key, const float* grad);
  // Push without spilling: pushes to uncached rows whose shard's log is full are not applied
  // but their positions in `keys` appended to `deferred`, in order.
  absl::Status PushOnce(absl::Span<const uint64_t> keys, const float* grads,
                        std::vector<uint32_t>* deferred);
  // Makes `count` free slots in `shard`, writing dirty victims first.
  absl::Status MakeRoom(Shard& shard, uint32_t count);
  // Writes `batch` (of rows of this table, `what` it holds for errors); errors name the table.
  absl::Status WriteRows(RowStore::Batch& batch, absl::string_view what);
  // Writes the dirty slots in `slots` of `shard` and marks them clean.
  absl::Status WriteBack(Shard& shard, const std::vector<uint32_t>& slots);
  // Caches the rows of `keys` (misses of `shard`) and returns their slots in `slots`.
  absl::Status LoadMisses(Shard& shard, absl::Span<const uint64_t> keys,
                          std::vector<uint32_t>* slots);
  // Caches the rows of keys[i] for i in `positions` (misses of `shard`), in chunks no larger
  // than the shard so that a chunk's rows can all be cached at once, and calls
  // fn(begin, slots) after each chunk: slots[j] holds the row of keys[positions[begin + j]].
  template <typename Fn>
  absl::Status LoadMissesInChunks(Shard& shard, absl::Span<const uint64_t> keys,
                                  absl::Span<const uint32_t> positions, Fn fn);
  bool Admit(Shard& shard, uint64_t key);

  const proto::TableConfig config_;
  RowStore* const store_;
  const int store_index_;
  const UpdateStamp* const stamp_;
  const std::unique_ptr<Optimizer> optimizer_;
  const RowLayout layout_;
  const bool admission_enabled_;
  // Pushes to uncached rows are written as merge operands (see the class comment). Not with
  // admission: whether such a push only counts depends on whether the row is stored.
  const bool merge_pushes_;
  std::unique_ptr<CountMinSketch> sketch_;
  // False until this table writes its first row, if RocksDB held none at open: lets misses
  // skip RocksDB for keys that cannot be there.
  std::atomic<bool> may_have_stored_rows_;
  std::vector<std::unique_ptr<Shard>> shards_;
  // Writes the shards' push logs to RocksDB; locks whole-table work. After shards_, so that it
  // is destroyed (its thread stopped) first.
  std::unique_ptr<Spiller> spiller_;
  std::atomic<uint64_t> push_wait_micros_{0};
};

}  // namespace granary

#endif  // GRANARY_PS_EMBEDDING_TABLE_H_
