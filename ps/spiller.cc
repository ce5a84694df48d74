#include "ps/spiller.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"

namespace granary {
namespace {

// How many keys ahead WriteLogs prefetches their operands: enough to cover a DRAM miss
// (~100 ns) at ~10 ns per key.
constexpr size_t kPrefetchDistance = 8;

}  // namespace

Spiller::Spiller(RowStore* store, int store_index, std::vector<ShardPushLogs*> shards,
                 std::atomic<bool>* stored_rows, bool run_thread)
    : store_(store),
      store_index_(store_index),
      shards_(std::move(shards)),
      stored_rows_(stored_rows) {
  if (run_thread) thread_ = std::thread([this] { Run(); });
}

Spiller::~Spiller() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(thread_mutex_);
    stop_ = true;
  }
  wakeup_.notify_one();
  thread_.join();
}

void Spiller::Run() {
  pthread_setname_np(pthread_self(), "granary:spill");  // for top and perf
  std::unique_lock<std::mutex> lock(thread_mutex_);
  while (true) {
    // After a failure the next push spills itself (RetryFailedSpill), so that its caller gets
    // the error.
    wakeup_.wait(lock, [&] {
      return stop_ || (spill_requested_.load(std::memory_order_relaxed) &&
                       !spill_failed_.load(std::memory_order_relaxed));
    });
    if (stop_) return;
    lock.unlock();
    absl::Status status = SpillLogs(/*always=*/false);
    if (!status.ok()) {
      LOG(WARNING) << "spilling push logs failed (the next push tries again): " << status;
      spill_failed_.store(true, std::memory_order_relaxed);
    }
    lock.lock();
  }
}

void Spiller::Wake() {
  { std::lock_guard<std::mutex> lock(thread_mutex_); }  // no wake-up lost between check and wait
  wakeup_.notify_one();
}

absl::Status Spiller::RetryFailedSpill() {
  if (!spill_failed_.load(std::memory_order_relaxed)) return absl::OkStatus();
  absl::Status status = SpillLogs(/*always=*/true);
  if (status.ok()) spill_failed_.store(false, std::memory_order_relaxed);
  return status;
}

absl::Status Spiller::Spill() { return SpillLogs(/*always=*/true); }

absl::Status Spiller::SpillLogs(bool always) {
  std::lock_guard<std::mutex> spill_lock(spill_mutex_);
  // Another thread may have spilled while this one waited.
  if (!spill_requested_.exchange(false, std::memory_order_relaxed) && !always) {
    return absl::OkStatus();
  }
  // Seal each shard's log, so that pushes go on into an empty one while the file is written
  // and ingested. (A sealed log left by a failed spill stays, and is written again now.) No
  // write reaches a sealed row until its log is emptied (logged rows are never cached, so never
  // written back), so the snapshot holds exactly what the sealed pushes apply to.
  {
    std::vector<std::unique_lock<std::mutex>> locks = LockShards();
    for (ShardPushLogs* shard : shards_) {
      if (shard->sealed_log.empty()) shard->active_log.Swap(shard->sealed_log);
    }
    sealed_snapshot_ = store_->NewSnapshot();
  }
  // Sealed logs change only under spill_mutex_, so they are read here without shard locks.
  std::unique_ptr<RowStore::MergeFile> file;
  const absl::Time write_start = absl::Now();
  absl::Status status = WriteLogs(/*include_active=*/false, &file);
  const absl::Time ingest_start = absl::Now();
  write_micros_.fetch_add(absl::ToInt64Microseconds(ingest_start - write_start),
                          std::memory_order_relaxed);
  // Pulls and pushes go on during the ingest: until the sealed logs are emptied, pulls read
  // sealed rows as of the seal, so they see the sealed pushes once, from the logs.
  if (status.ok()) status = IngestLogs(*file);
  if (status.ok()) {
    std::vector<std::unique_lock<std::mutex>> locks = LockShards();
    ClearIngestedLogs(/*include_active=*/false);
  }
  ingest_micros_.fetch_add(absl::ToInt64Microseconds(absl::Now() - ingest_start),
                           std::memory_order_relaxed);
  if (!status.ok()) spill_requested_.store(true, std::memory_order_relaxed);  // to retry
  return status;
}

std::vector<std::unique_lock<std::mutex>> Spiller::LockShards() {
  std::vector<std::unique_lock<std::mutex>> locks;
  for (ShardPushLogs* shard : shards_) locks.emplace_back(shard->mutex);
  return locks;
}

std::vector<std::unique_lock<std::mutex>> Spiller::LockAll() {
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.emplace_back(spill_mutex_);  // first, as SpillLogs takes it
  for (ShardPushLogs* shard : shards_) locks.emplace_back(shard->mutex);
  return locks;
}

absl::Status Spiller::FlushLocked() {
  bool logged = false;
  for (ShardPushLogs* shard : shards_) {
    logged |= !shard->sealed_log.empty() || !shard->active_log.empty();
  }
  if (!logged) return absl::OkStatus();
  std::unique_ptr<RowStore::MergeFile> file;
  absl::Status status = WriteLogs(/*include_active=*/true, &file);
  if (status.ok()) status = IngestLogs(*file);
  if (!status.ok()) return status;
  ClearIngestedLogs(/*include_active=*/true);
  return absl::OkStatus();
}

absl::Status Spiller::WriteLogs(bool include_active, std::unique_ptr<RowStore::MergeFile>* file) {
  absl::StatusOr<std::unique_ptr<RowStore::MergeFile>> created = store_->NewMergeFile(store_index_);
  if (!created.ok()) return created.status();
  *file = *std::move(created);
  // (key, its oldest push in the sealed log) for every logged key; with include_active, keys
  // only in the active log come with PushLog::kEnd.
  std::vector<std::pair<uint64_t, uint32_t>> heads;
  std::vector<std::pair<uint64_t, uint32_t>> active_heads;
  for (ShardPushLogs* shard : shards_) {
    shard->sealed_log.AppendHeads(&heads);
    if (!include_active) continue;
    active_heads.clear();
    shard->active_log.AppendHeads(&active_heads);
    for (const auto& [key, head] : active_heads) {
      if (!shard->sealed_log.Contains(key)) heads.emplace_back(key, PushLog::kEnd);
    }
  }
  std::sort(heads.begin(), heads.end());  // each key once: it lives in one shard
  const uint64_t mask = shards_.size() - 1;
  // Keys in order visit the logs' operands in random order: start loading a few keys ahead.
  auto prefetch = [&](size_t h) {
    if (h >= heads.size() || heads[h].second == PushLog::kEnd) return;
    const PushLog& log = shards_[heads[h].first & mask]->sealed_log;
    const char* operand = log.Operand(heads[h].second);
    __builtin_prefetch(operand);
    __builtin_prefetch(operand + log.operand_bytes() - 1);
  };
  for (size_t h = 0; h < kPrefetchDistance; ++h) prefetch(h);
  std::string operands;  // all of a key's pushes, in order, as one operand
  for (size_t h = 0; h < heads.size(); ++h) {
    prefetch(h + kPrefetchDistance);
    const auto [key, head] = heads[h];
    const ShardPushLogs& shard = *shards_[key & mask];
    const size_t operand_bytes = shard.sealed_log.operand_bytes();
    absl::string_view pushes;
    if (!include_active && shard.sealed_log.Next(head) == PushLog::kEnd) {
      // Most spilled keys were pushed once: their operand is passed as it lies in the log.
      pushes = absl::string_view(shard.sealed_log.Operand(head), operand_bytes);
    } else {
      operands.clear();
      shard.ForEachLoggedPush(key, head, include_active, [&](const char* operand) {
        operands.append(operand, operand_bytes);
      });
      pushes = operands;
    }
    absl::Status status = (*file)->Add(key, pushes);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Spiller::IngestLogs(RowStore::MergeFile& file) {
  stored_rows_->store(true, std::memory_order_release);
  absl::Status status = store_->IngestMergeFile(file);
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat("table '", store_->table_name(store_index_), "': writing ",
                                   file.count(), " rows' logged pushes: ", status.message()));
}

void Spiller::ClearIngestedLogs(bool include_active) {
  for (ShardPushLogs* shard : shards_) {
    shard->sealed_log.Clear();
    if (include_active) shard->active_log.Clear();
  }
  sealed_snapshot_.reset();
  spills_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace granary
