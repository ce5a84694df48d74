// Spiller: writes a table's PushLogs to RocksDB while pushes and pulls go on.
//
// A table that merges pushes (ps/push_merge_operator.h) appends a push to a row its cache does
// not hold to the shard's active PushLog (ShardPushLogs below). When a shard's active log is
// three quarters full (RequestSpillIfDue), the spiller thread "spills": with every shard locked
// it seals each shard's log (pushes go on into a fresh one) and takes a RocksDB snapshot; then,
// with no shard locked, it writes the sealed logs as one sorted file of merge operands, one
// operand per key holding its pushes in order, and ingests the file; then, with every shard
// locked again, it empties the sealed logs and drops the snapshot. RocksDB applies the
// pushes when a row is next read or compacted.
//
// What a reader must do meanwhile (the table's part): a row with sealed pushes is read as of
// sealed_snapshot(), so a read racing the ingest never sees a sealed push twice, from the file
// and from the log; a row with logged pushes is never cached (so never written back), which
// keeps the snapshot exactly what the sealed pushes apply to and a row's pushes in order.
//
// A spill that fails leaves its sealed logs in place, to be written by the next spill; after a
// failure of the thread's spill, the next push spills itself (RetryFailedSpill) so that its
// caller gets the error.
//
// Thread-safe: every method may be called from any thread, under the locking each states.
// Lock order: the spill lock (held throughout a spill, taken first by LockAll), then shard
// mutexes in index order.
#ifndef GRANARY_PS_SPILLER_H_
#define GRANARY_PS_SPILLER_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "ps/push_log.h"
#include "ps/row_store.h"

namespace granary {

// The push logs of one cache shard, and the mutex that guards them. A key is never both
// cached and logged.
struct ShardPushLogs {
  ShardPushLogs(size_t operand_bytes, size_t log_capacity)
      : active_log(operand_bytes, log_capacity), sealed_log(operand_bytes, log_capacity) {}

  // True if `key` has pushes in either log. REQUIRES: mutex held.
  bool HasLoggedPushes(uint64_t key) const {
    return (!sealed_log.empty() && sealed_log.Contains(key)) ||
           (!active_log.empty() && active_log.Contains(key));
  }

  // Calls fn(operand) for each logged push of `key`, oldest first: the sealed log's from
  // `sealed_head` (its Head(key)), then, if `include_active`, the active log's. REQUIRES: mutex
  // held, or the spill lock if !include_active.
  template <typename Fn>
  void ForEachLoggedPush(uint64_t key, uint32_t sealed_head, bool include_active, Fn fn) const {
    for (uint32_t i = sealed_head; i != PushLog::kEnd; i = sealed_log.Next(i)) {
      fn(sealed_log.Operand(i));
    }
    if (!include_active) return;
    for (uint32_t i = active_log.Head(key); i != PushLog::kEnd; i = active_log.Next(i)) {
      fn(active_log.Operand(i));
    }
  }

  // Guards the logs and whatever the owner keeps beside them (EmbeddingTable's shard cache).
  std::mutex mutex;
  // Pushes to uncached rows are appended to the active log; the sealed one is being written
  // to RocksDB by a spill (or was, and the spill failed).
  PushLog active_log;
  PushLog sealed_log;  // changes only with the spill lock held as well
};

class Spiller {
 public:
  // Spills the logs of `shards` (not owned; they outlive the spiller; a power of two of them,
  // key k in shards[k & (size - 1)]) into table `store_index` of `store`, which must hold the
  // table's merge operator once a push is logged. `stored_rows` (not owned) is set before every
  // ingest: the table's flag that RocksDB may hold its rows. With `run_thread`, a thread spills
  // whenever a spill is requested; without, only Spill and FlushLocked write the logs.
  Spiller(RowStore* store, int store_index, std::vector<ShardPushLogs*> shards,
          std::atomic<bool>* stored_rows, bool run_thread);
  // Stops the thread. Logged pushes not flushed stay in the logs (the owner's).
  ~Spiller();
  Spiller(const Spiller&) = delete;
  Spiller& operator=(const Spiller&) = delete;

  // Requests a spill if `shard`'s active log is three quarters full, so that pushes rarely find
  // a log full. REQUIRES: shard.mutex held.
  void RequestSpillIfDue(const ShardPushLogs& shard) {
    if (shard.active_log.size() >= shard.active_log.capacity() / 4 * 3) {
      spill_requested_.store(true, std::memory_order_relaxed);
    }
  }
  // Wakes the thread if a spill was requested. REQUIRES: no shard mutex held.
  void WakeIfRequested() {
    if (thread_.joinable() && spill_requested_.load(std::memory_order_relaxed)) Wake();
  }
  // If the thread's last spill failed, spills now: OK if it succeeds (and the thread resumes),
  // else its error. OK at once if nothing failed. REQUIRES: no lock of this spiller held.
  absl::Status RetryFailedSpill();
  // Spills now (see the class comment); errors name the table. On error the sealed logs stay,
  // to be written by the next spill. REQUIRES: no lock of this spiller held.
  absl::Status Spill();

  // Locks the spill lock, then every shard's mutex in index order: whole-table work then
  // excludes spills, pushes and pulls.
  std::vector<std::unique_lock<std::mutex>> LockAll();
  // Writes every logged push, sealed and active, to RocksDB and empties the logs. Errors name
  // the table; on error the logs stay. REQUIRES: LockAll held.
  absl::Status FlushLocked();

  // The store as of the last seal while the sealed logs are not empty: what their pushes apply
  // to. REQUIRES: a shard's mutex held.
  const rocksdb::Snapshot* sealed_snapshot() const { return sealed_snapshot_.get(); }

  // Spills (and flushes of logged pushes) so far, and the microseconds they spent writing
  // their file and ingesting it.
  uint64_t spills() const { return spills_.load(std::memory_order_relaxed); }
  uint64_t write_micros() const { return write_micros_.load(std::memory_order_relaxed); }
  uint64_t ingest_micros() const { return ingest_micros_.load(std::memory_order_relaxed); }

 private:
  // Spill() if a spill was requested, or `always`. REQUIRES: no lock of this spiller held.
  absl::Status SpillLogs(bool always);
  std::vector<std::unique_lock<std::mutex>> LockShards();
  // Writes the sealed logs (and the active ones if `include_active`) of every shard into a new
  // MergeFile. REQUIRES: spill_mutex_ held, and every shard's mutex too if include_active.
  absl::Status WriteLogs(bool include_active, std::unique_ptr<RowStore::MergeFile>* file);
  // Ingests `file` (written by WriteLogs); errors name the table. REQUIRES: spill_mutex_ held.
  absl::Status IngestLogs(RowStore::MergeFile& file);
  // After IngestLogs: empties the logs the file held (the sealed ones, and the active ones if
  // it was written `include_active`), drops the seal's snapshot and counts a spill.
  // REQUIRES: spill_mutex_ and every shard locked.
  void ClearIngestedLogs(bool include_active);
  // The thread's loop: spills whenever a spill is requested, until stopped.
  void Run();
  void Wake();

  RowStore* const store_;
  const int store_index_;
  const std::vector<ShardPushLogs*> shards_;
  std::atomic<bool>* const stored_rows_;
  // Set when a shard's active log is three quarters full: wakes the thread.
  std::atomic<bool> spill_requested_{false};
  // Held throughout a spill, and first by LockAll: one spill at a time.
  std::mutex spill_mutex_;
  // Written with spill_mutex_ and every shard locked; read with a shard locked.
  RowStore::Snapshot sealed_snapshot_;
  std::atomic<uint64_t> spills_{0};
  std::atomic<uint64_t> write_micros_{0};
  std::atomic<uint64_t> ingest_micros_{0};
  // Set when the thread's last spill failed; the thread waits until RetryFailedSpill succeeds.
  std::atomic<bool> spill_failed_{false};
  std::mutex thread_mutex_;
  std::condition_variable wakeup_;
  bool stop_ = false;   // guarded by thread_mutex_
  std::thread thread_;  // started by the constructor, once the rest is built
};

}  // namespace granary

#endif  // GRANARY_PS_SPILLER_H_
