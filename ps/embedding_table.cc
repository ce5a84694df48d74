#include "ps/embedding_table.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/random.h"
#include "ps/initializer.h"
#include "ps/push_log.h"
#include "ps/row_cache.h"
#include "ps/spiller.h"

namespace granary {
namespace {

constexpr uint32_t kDefaultSketchWidth = 1 << 18;
// Rows per WriteBatch when whole tables are rewritten (Shrink): bounds the batch's memory.
constexpr size_t kRowsPerScanBatch = 4096;
// How many keys ahead the hit path prefetches hash-map entries: enough to cover a DRAM miss
// (~100 ns) at ~10 ns per lookup.
constexpr size_t kPrefetchDistance = 8;
// Pushes a PushLog holds at least, however small the budget: a spill per few pushes would
// only make many tiny files for RocksDB to compact.
constexpr size_t kMinPushLogCapacity = 64;

size_t RoundUpTo8(size_t bytes) { return (bytes + 7) & ~size_t{7}; }

// Adds the wall and thread CPU time of its scope to stats->miss_nanos and miss_cpu_nanos
// (nothing if stats is null): two clock reads at each end per shard of a request, not per row.
class MissTimer {
 public:
  explicit MissTimer(CacheStats* stats) : stats_(stats) {
    if (stats_ != nullptr) {
      start_nanos_ = absl::GetCurrentTimeNanos();
      start_cpu_nanos_ = ThreadCpuNanos();
    }
  }
  ~MissTimer() {
    if (stats_ == nullptr) return;
    stats_->miss_nanos += absl::GetCurrentTimeNanos() - start_nanos_;
    stats_->miss_cpu_nanos += ThreadCpuNanos() - start_cpu_nanos_;
  }
  MissTimer(const MissTimer&) = delete;
  MissTimer& operator=(const MissTimer&) = delete;

 private:
  static int64_t ThreadCpuNanos() {
    timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
  }

  CacheStats* const stats_;
  int64_t start_nanos_ = 0;
  int64_t start_cpu_nanos_ = 0;
};

}  // namespace

struct EmbeddingTable::Shard : ShardPushLogs {
  Shard(size_t row_bytes, uint32_t capacity, size_t operand_bytes, size_t log_capacity)
      : ShardPushLogs(operand_bytes, log_capacity), cache(row_bytes, capacity) {}
  RowCache cache;
  uint64_t rng_state = 0;  // admit_probability draws
  CacheStats stats;
};

absl::Status EmbeddingTable::CheckRecordSize(uint64_t key, size_t bytes) const {
  if (bytes == layout_.row_bytes()) return absl::OkStatus();
  return absl::DataLossError(absl::StrFormat(
      "table '%s' key %#018x in RocksDB at %s: stored record has %d bytes, expected %d "
      "(dim %d, %d optimizer slots)",
      name(), key, store_->path(), bytes, layout_.row_bytes(), layout_.dim(), layout_.num_slots()));
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Create(
    const proto::TableConfig& config, RowStore* store, int store_index, size_t cache_bytes,
    const UpdateStamp* stamp, int num_shards) {
  if (num_shards < 1 || (num_shards & (num_shards - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("table '", config.name(), "': shard count ",
                                                   num_shards, " is not a power of two"));
  }
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeTableOptimizer(config);
  if (!optimizer.ok()) return optimizer.status();
  std::unique_ptr<EmbeddingTable> table(
      new EmbeddingTable(config, store, store_index, stamp, *std::move(optimizer)));
  // A table that merges pushes keeps 1/kPushLogShare of its budget for its PushLogs: an
  // active and a sealed one per shard.
  const size_t log_bytes = table->merge_pushes_ ? cache_bytes / kPushLogShare : 0;
  const size_t operand_bytes = PushOperandBytes(table->layout_);
  const size_t log_capacity = std::max(
      kMinPushLogCapacity, PushLog::CapacityFor(log_bytes / (2 * num_shards), operand_bytes));
  size_t stride = RoundUpTo8(table->layout_.row_bytes());
  size_t rows = (cache_bytes - log_bytes) / (stride + RowCache::kMaxOverheadBytesPerRow);
  uint32_t per_shard = static_cast<uint32_t>(std::max<size_t>(1, rows / num_shards));
  for (int s = 0; s < num_shards; ++s) {
    table->shards_.push_back(
        std::make_unique<Shard>(stride, per_shard, operand_bytes, log_capacity));
    table->shards_.back()->rng_state = config.initializer().seed() ^ (0x5851f42d4c957f2dULL * s);
  }
  std::vector<ShardPushLogs*> logs;
  for (auto& shard : table->shards_) logs.push_back(shard.get());
  table->spiller_ = std::make_unique<Spiller>(store, store_index, std::move(logs),
                                              &table->may_have_stored_rows_, table->merge_pushes_);
  return table;
}

EmbeddingTable::EmbeddingTable(const proto::TableConfig& config, RowStore* store, int store_index,
                               const UpdateStamp* stamp, std::unique_ptr<Optimizer> optimizer)
    : config_(config),
      store_(store),
      store_index_(store_index),
      stamp_(stamp),
      optimizer_(std::move(optimizer)),
      layout_(static_cast<int>(config.dim()), optimizer_->num_slots()),
      admission_enabled_(config.admission().min_count() > 0 ||
                         config.admission().admit_probability() > 0),
      merge_pushes_(store->has_merge_operator(store_index) && !admission_enabled_),
      may_have_stored_rows_(!store->TableWasEmptyAtOpen(store_index)) {
  if (config.admission().min_count() > 0) {
    uint32_t width = config.admission().sketch_width();
    sketch_ = std::make_unique<CountMinSketch>(width > 0 ? width : kDefaultSketchWidth);
  }
}

template <typename Fn>
absl::Status EmbeddingTable::ForEachShard(absl::Span<const uint64_t> keys, Fn fn) {
  // Counting sort of positions by shard; buffers are reused across calls of a thread.
  thread_local std::vector<uint32_t> order;
  thread_local std::vector<size_t> begin_of;
  const size_t num_shards = shards_.size();
  const uint64_t mask = num_shards - 1;
  begin_of.assign(num_shards + 1, 0);
  for (uint64_t key : keys) ++begin_of[(key & mask) + 1];
  for (size_t s = 0; s < num_shards; ++s) begin_of[s + 1] += begin_of[s];
  order.resize(keys.size());
  std::vector<size_t> next(begin_of.begin(), begin_of.end() - 1);
  for (size_t i = 0; i < keys.size(); ++i) order[next[keys[i] & mask]++] = static_cast<uint32_t>(i);
  auto serve = [&](size_t s, std::unique_lock<std::mutex>& lock) {
    return fn(*shards_[s],
              absl::Span<const uint32_t>(order.data() + begin_of[s], begin_of[s + 1] - begin_of[s]),
              lock);
  };
  // Shards whose lock is free are served first; one another request holds is tried again after
  // the rest, and waited for only when every shard left is held. Requests that touch every
  // shard (any batch of thousands of keys, and every batch with a hot key) then work on
  // different shards at once, instead of each walking the shards in index order right behind
  // the other and waiting for it on every shard where it is slower or was preempted.
  thread_local std::vector<uint32_t> left;  // shards with keys not served yet
  left.clear();
  for (size_t s = 0; s < num_shards; ++s) {
    if (begin_of[s] != begin_of[s + 1]) left.push_back(static_cast<uint32_t>(s));
  }
  while (!left.empty()) {
    size_t kept = 0;
    for (uint32_t s : left) {
      std::unique_lock<std::mutex> lock(shards_[s]->mutex, std::try_to_lock);
      if (!lock.owns_lock()) {
        left[kept++] = s;
        continue;
      }
      absl::Status status = serve(s, lock);
      if (!status.ok()) return status;
    }
    const bool served_any = kept < left.size();
    left.resize(kept);
    if (served_any || left.empty()) continue;
    std::unique_lock<std::mutex> lock(shards_[left.front()]->mutex);  // all held: wait for one
    absl::Status status = serve(left.front(), lock);
    if (!status.ok()) return status;
    left.erase(left.begin());
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::Fetch(absl::Span<const uint64_t> keys, const rocksdb::Snapshot* as_of,
                                   std::vector<char>* records, std::vector<bool>* found) {
  if (!may_have_stored_rows_.load(std::memory_order_acquire)) {
    found->assign(keys.size(), false);
    return absl::OkStatus();
  }
  // Not thread_local: a PinnableSlice pins RocksDB blocks, which must be released before the
  // call returns (and before the store could be closed).
  std::vector<rocksdb::PinnableSlice> slices;
  absl::Status status = store_->MultiGet(store_index_, keys, &slices, found, as_of);
  if (!status.ok()) return status;
  const size_t row_bytes = layout_.row_bytes();
  records->resize(keys.size() * row_bytes);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(*found)[i]) continue;
    status = CheckRecordSize(keys[i], slices[i].size());
    if (!status.ok()) return status;
    std::memcpy(records->data() + i * row_bytes, slices[i].data(), row_bytes);
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::WriteRows(RowStore::Batch& batch, absl::string_view what) {
  may_have_stored_rows_.store(true, std::memory_order_release);
  absl::Status status = store_->Write(batch);
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("table '", name(), "': writing ", batch.count(),
                                                  " ", what, ": ", status.message()));
}

absl::Status EmbeddingTable::WriteBack(Shard& shard, const std::vector<uint32_t>& slots) {
  RowStore::Batch batch = store_->NewBatch();
  for (uint32_t slot : slots) {
    if (shard.cache.dirty(slot)) {
      batch.PutRow(store_index_, shard.cache.key(slot), shard.cache.row(slot), layout_.row_bytes());
    }
  }
  if (batch.empty()) return absl::OkStatus();
  absl::Status status = WriteRows(batch, "dirty rows back");
  if (!status.ok()) return status;
  for (uint32_t slot : slots) shard.cache.set_dirty(slot, false);
  shard.stats.rows_written += batch.count();
  return absl::OkStatus();
}

absl::Status EmbeddingTable::MakeRoom(Shard& shard, uint32_t count) {
  if (shard.cache.free_slots() >= count) return absl::OkStatus();
  thread_local std::vector<uint32_t> victims;
  victims.clear();
  shard.cache.SelectVictims(count - shard.cache.free_slots(), &victims);
  absl::Status status = WriteBack(shard, victims);
  if (!status.ok()) return status;  // victims stay cached: nothing is lost
  shard.cache.Evict(victims);
  return absl::OkStatus();
}

absl::Status EmbeddingTable::LoadMisses(Shard& shard, absl::Span<const uint64_t> keys,
                                        std::vector<uint32_t>* slots) {
  const MissTimer timer(&shard.stats);
  thread_local std::vector<char> records;
  thread_local std::vector<bool> found;
  absl::Status status = Fetch(keys, /*as_of=*/nullptr, &records, &found);
  if (!status.ok()) return status;
  shard.stats.misses += keys.size();
  status = MakeRoom(shard, static_cast<uint32_t>(keys.size()));
  if (!status.ok()) return status;
  const size_t row_bytes = layout_.row_bytes();
  slots->clear();
  for (size_t j = 0; j < keys.size(); ++j) {
    uint32_t slot = shard.cache.Find(keys[j]);  // a repeated key was inserted just before
    if (slot == RowCache::kNoSlot) {
      slot = shard.cache.Insert(keys[j]);
      char* row = shard.cache.row(slot);
      if (found[j]) {
        std::memcpy(row, records.data() + j * row_bytes, row_bytes);
      } else {
        InitializeRecord(config_, *optimizer_, layout_, keys[j], row);
      }
      shard.cache.set_live(slot, found[j] || !admission_enabled_);
    }
    slots->push_back(slot);
  }
  return absl::OkStatus();
}

template <typename Fn>
absl::Status EmbeddingTable::LoadMissesInChunks(Shard& shard, absl::Span<const uint64_t> keys,
                                                absl::Span<const uint32_t> positions, Fn fn) {
  thread_local std::vector<uint64_t> miss_keys;
  thread_local std::vector<uint32_t> slots;
  const size_t chunk = shard.cache.capacity();
  for (size_t begin = 0; begin < positions.size(); begin += chunk) {
    const size_t end = std::min(positions.size(), begin + chunk);
    miss_keys.clear();
    for (size_t m = begin; m < end; ++m) miss_keys.push_back(keys[positions[m]]);
    absl::Status status = LoadMisses(shard, miss_keys, &slots);
    if (!status.ok()) return status;
    fn(begin, slots);
  }
  return absl::OkStatus();
}

void EmbeddingTable::LookUp(Shard& shard, absl::Span<const uint64_t> keys,
                            absl::Span<const uint32_t> positions,
                            std::vector<std::pair<uint32_t, uint32_t>>* hits,
                            std::vector<uint32_t>* misses) {
  hits->clear();
  misses->clear();
  // All lookups first, prefetching hash-map entries ahead and each hit's row, so that the
  // callers' row copies and updates find their cache lines loaded: DRAM misses overlap.
  for (size_t p = 0; p < positions.size(); ++p) {
    if (p + kPrefetchDistance < positions.size()) {
      shard.cache.PrefetchKey(keys[positions[p + kPrefetchDistance]]);
    }
    uint32_t i = positions[p];
    uint32_t slot = shard.cache.Find(keys[i]);
    if (slot == RowCache::kNoSlot) {
      misses->push_back(i);
    } else {
      shard.cache.PrefetchRow(slot);
      hits->emplace_back(i, slot);
    }
  }
}

absl::Status EmbeddingTable::Pull(absl::Span<const uint64_t> keys, float* values, bool read_only) {
  const size_t dim = layout_.dim();
  return ForEachShard(keys, [&](Shard& shard, absl::Span<const uint32_t> positions,
                                std::unique_lock<std::mutex>&) {
    thread_local std::vector<uint32_t> misses;
    thread_local std::vector<uint32_t> to_cache;
    thread_local std::vector<uint32_t> to_read;
    thread_local std::vector<uint32_t> to_read_as_of_seal;
    thread_local std::vector<std::pair<uint32_t, uint32_t>> hits;
    LookUp(shard, keys, positions, &hits, &misses);
    for (auto [i, slot] : hits) {
      std::memcpy(values + i * dim, layout_.values(shard.cache.row(slot)), dim * sizeof(float));
    }
    shard.stats.hits += positions.size() - misses.size();
    if (misses.empty()) return absl::OkStatus();
    // Evaluation caches nothing; training caches a miss while there is room, and then only
    // what the doorkeeper admits (RowCache::AdmitMiss). The rest, and rows with pushes in
    // a PushLog (never cached, see ps/spiller.h), are read around the cache: rows with
    // sealed pushes as of the seal (see the class comment).
    to_cache.clear();
    to_read.clear();
    to_read_as_of_seal.clear();
    for (uint32_t i : misses) {
      if (!shard.sealed_log.empty() && shard.sealed_log.Contains(keys[i])) {
        to_read_as_of_seal.push_back(i);
        continue;
      }
      const bool cache =
          !read_only && !shard.HasLoggedPushes(keys[i]) &&
          (shard.cache.free_slots() > to_cache.size() || shard.cache.AdmitMiss(keys[i]));
      (cache ? to_cache : to_read).push_back(i);
    }
    absl::Status status = ReadAround(shard, keys, to_read, /*as_of=*/nullptr, read_only, values);
    if (status.ok()) {
      status = ReadAround(shard, keys, to_read_as_of_seal, spiller_->sealed_snapshot(), read_only,
                          values);
    }
    if (!status.ok()) return status;
    return LoadMissesInChunks(
        shard, keys, to_cache, [&](size_t begin, const std::vector<uint32_t>& slots) {
          for (size_t j = 0; j < slots.size(); ++j) {
            std::memcpy(values + to_cache[begin + j] * dim,
                        layout_.values(shard.cache.row(slots[j])), dim * sizeof(float));
          }
        });
  });
}

absl::Status EmbeddingTable::ReadAround(Shard& shard, absl::Span<const uint64_t> keys,
                                        absl::Span<const uint32_t> positions,
                                        const rocksdb::Snapshot* as_of, bool read_only,
                                        float* values) {
  if (positions.empty()) return absl::OkStatus();
  const MissTimer timer(read_only ? nullptr : &shard.stats);
  const size_t dim = layout_.dim();
  thread_local std::vector<uint64_t> miss_keys;
  thread_local std::vector<char> records;
  thread_local std::vector<bool> found;
  miss_keys.clear();
  for (uint32_t i : positions) miss_keys.push_back(keys[i]);
  absl::Status status = Fetch(miss_keys, as_of, &records, &found);
  if (!status.ok()) return status;
  if (!read_only) shard.stats.misses += positions.size();
  thread_local std::vector<uint64_t> folded;  // an aligned record
  folded.resize(RoundUpTo8(layout_.row_bytes()) / sizeof(uint64_t));
  for (size_t j = 0; j < miss_keys.size(); ++j) {
    float* out = values + positions[j] * dim;
    const char* record = records.data() + j * layout_.row_bytes();
    if (shard.HasLoggedPushes(miss_keys[j])) {
      char* row = reinterpret_cast<char*>(folded.data());
      if (found[j]) {
        std::memcpy(row, record, layout_.row_bytes());
      } else {
        InitializeRecord(config_, *optimizer_, layout_, miss_keys[j], row);
      }
      ApplyLoggedPushes(shard, miss_keys[j], row);
      std::memcpy(out, layout_.values(row), dim * sizeof(float));
    } else if (found[j]) {
      std::memcpy(out, layout_.values(record), dim * sizeof(float));
    } else {
      InitializeRow(config_.initializer(), miss_keys[j], layout_.dim(), out);
    }
  }
  return absl::OkStatus();
}

bool EmbeddingTable::Admit(Shard& shard, uint64_t key) {
  const proto::AdmissionConfig& admission = config_.admission();
  if (sketch_ != nullptr && sketch_->Increment(key) >= admission.min_count()) return true;
  if (admission.admit_probability() > 0) {
    double draw = UnitDouble(SplitMix64(&shard.rng_state));
    if (draw < admission.admit_probability()) return true;
  }
  return false;
}

void EmbeddingTable::AddUpdate(Shard& shard, uint32_t slot, const float* grad,
                               std::vector<RowUpdate>* updates) {
  if (!shard.cache.live(slot)) {
    if (!Admit(shard, shard.cache.key(slot))) {
      ++shard.stats.pushes_not_admitted;
      return;
    }
    shard.cache.set_live(slot, true);
  }
  char* row = shard.cache.row(slot);
  RowMeta* meta = layout_.meta(row);
  StampPush(stamp_->day.load(std::memory_order_relaxed),
            stamp_->version.load(std::memory_order_relaxed), meta);
  shard.cache.set_dirty(slot, true);
  updates->push_back(RowUpdate{layout_.values(row), layout_.slots(row), meta, grad});
}

EmbeddingTable::~EmbeddingTable() = default;

absl::Status EmbeddingTable::Push(absl::Span<const uint64_t> keys, const float* grads) {
  {
    absl::Status status = spiller_->RetryFailedSpill();
    if (!status.ok()) return status;  // nothing of this push applied
  }
  // Pushes that found their shard's log full are deferred, the logs spilled, and those pushes
  // pushed again: a log never grows past its capacity. Each round logs at least one key
  // unless other threads keep filling the logs; the bound only stops a pathological race.
  constexpr int kMaxRounds = 1000;
  const size_t dim = layout_.dim();
  std::vector<uint32_t> deferred;
  std::vector<uint64_t> deferred_keys;
  std::vector<float> deferred_grads;
  absl::Span<const uint64_t> round_keys = keys;  // this round's pushes
  const float* round_grads = grads;
  absl::Status status = PushOnce(round_keys, round_grads, &deferred);
  spiller_->WakeIfRequested();
  for (int round = 1; status.ok() && !deferred.empty(); ++round) {
    if (round == kMaxRounds) {
      return absl::ResourceExhaustedError(absl::StrCat("table '", name(), "': ", deferred.size(),
                                                       " pushes found the push logs full ",
                                                       kMaxRounds, " times in a row"));
    }
    const absl::Time wait_start = absl::Now();
    status = spiller_->Spill();
    push_wait_micros_.fetch_add(absl::ToInt64Microseconds(absl::Now() - wait_start),
                                std::memory_order_relaxed);
    if (!status.ok()) return status;
    // New vectors: the round's keys may be deferred_keys itself.
    std::vector<uint64_t> next_keys;
    std::vector<float> next_grads;
    for (uint32_t i : deferred) {
      next_keys.push_back(round_keys[i]);
      next_grads.insert(next_grads.end(), round_grads + i * dim, round_grads + (i + 1) * dim);
    }
    deferred_keys.swap(next_keys);
    deferred_grads.swap(next_grads);
    round_keys = deferred_keys;
    round_grads = deferred_grads.data();
    deferred.clear();
    status = PushOnce(round_keys, round_grads, &deferred);
  }
  return status;
}

absl::Status EmbeddingTable::PushOnce(absl::Span<const uint64_t> keys, const float* grads,
                                      std::vector<uint32_t>* deferred) {
  const size_t dim = layout_.dim();
  return ForEachShard(
      keys, [&](Shard& shard, absl::Span<const uint32_t> positions, std::unique_lock<std::mutex>&) {
        thread_local std::vector<uint32_t> misses;
        thread_local std::vector<uint32_t> to_load;
        thread_local std::vector<RowUpdate> updates;
        thread_local std::vector<std::pair<uint32_t, uint32_t>> hits;
        updates.clear();
        LookUp(shard, keys, positions, &hits, &misses);
        for (auto [i, slot] : hits) AddUpdate(shard, slot, grads + i * dim, &updates);
        shard.stats.hits += positions.size() - misses.size();
        // Applied before loading misses: loading may evict (write back) these very rows.
        shard.stats.updates_refused += optimizer_->Apply(updates, layout_.dim());
        // A cache with room loads its misses (a table that fits in memory never reads twice); a
        // full one would evict a row per miss, so logging the push is cheaper. A row with pushes
        // logged already is never loaded: its pushes stay in order in the log.
        to_load.clear();
        if (merge_pushes_) {
          const bool room = misses.size() <= shard.cache.free_slots();
          for (uint32_t i : misses) {
            if (room && !shard.HasLoggedPushes(keys[i])) {
              to_load.push_back(i);
            } else if (!shard.active_log.full()) {
              LogPush(shard, keys[i], grads + i * dim);
            } else {
              deferred->push_back(i);  // and so are the key's later pushes: the log stays full
            }
          }
          spiller_->RequestSpillIfDue(shard);
        } else {
          to_load.assign(misses.begin(), misses.end());
        }
        return LoadMissesInChunks(
            shard, keys, to_load, [&](size_t begin, const std::vector<uint32_t>& slots) {
              updates.clear();
              for (size_t j = 0; j < slots.size(); ++j) {
                AddUpdate(shard, slots[j], grads + to_load[begin + j] * dim, &updates);
              }
              shard.stats.updates_refused += optimizer_->Apply(updates, layout_.dim());
            });
      });
}

void EmbeddingTable::ApplyLoggedPushes(const Shard& shard, uint64_t key, char* record) const {
  shard.ForEachLoggedPush(
      key, shard.sealed_log.Head(key), /*include_active=*/true,
      [&](const char* operand) { ApplyPushOperand(*optimizer_, layout_, operand, record); });
}

void EmbeddingTable::LogPush(Shard& shard, uint64_t key, const float* grad) {
  thread_local std::vector<char> operand;
  operand.resize(PushOperandBytes(layout_));
  EncodePushOperand(stamp_->day.load(std::memory_order_relaxed),
                    stamp_->version.load(std::memory_order_relaxed), grad, layout_.dim(),
                    operand.data());
  shard.active_log.Append(key, operand.data());
  ++shard.stats.pushes_merged;
}

absl::Status EmbeddingTable::FlushLocked() {
  absl::Status logs_flushed = spiller_->FlushLocked();
  if (!logs_flushed.ok()) return logs_flushed;
  for (auto& shard : shards_) {
    std::vector<uint32_t> dirty;
    shard->cache.ForEachDirty([&](uint32_t slot) { dirty.push_back(slot); });
    absl::Status status = WriteBack(*shard, dirty);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::FlushDirtyRows() {
  auto locks = spiller_->LockAll();
  return FlushLocked();
}

absl::Status EmbeddingTable::ScanStoredRowsLocked(
    const std::function<absl::Status(uint64_t key, char* record)>& fn) {
  absl::Status status = FlushLocked();
  if (!status.ok()) return status;
  const size_t row_bytes = layout_.row_bytes();
  std::vector<char> record(RoundUpTo8(row_bytes));  // aligned copy: RocksDB's bytes may not be
  std::unique_ptr<rocksdb::Iterator> it = store_->NewRowIterator(store_index_);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t key = RowStore::DecodeKey(it->key());
    status = CheckRecordSize(key, it->value().size());
    if (!status.ok()) return status;
    std::memcpy(record.data(), it->value().data(), row_bytes);
    status = fn(key, record.data());
    if (!status.ok()) return status;
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(absl::StrCat("table '", name(), "' in RocksDB at ",
                                               store_->path(),
                                               ": scan failed: ", it->status().ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ShrinkReport> EmbeddingTable::Shrink() {
  auto locks = spiller_->LockAll();
  const proto::EvictionConfig& eviction = config_.eviction();
  const float decay = eviction.has_show_decay() ? eviction.show_decay() : 1.0f;
  const uint32_t today = stamp_->day.load();
  const uint64_t version = stamp_->version.load();
  ShrinkReport report;
  report.table = name();
  RowStore::Batch batch = store_->NewBatch();
  absl::Status status = ScanStoredRowsLocked([&](uint64_t key, char* record) {
    RowMeta* meta = layout_.meta(record);
    meta->show_count *= decay;
    bool too_old = eviction.ttl_days() > 0 && today > meta->last_day &&
                   today - meta->last_day > eviction.ttl_days();
    bool too_rare =
        eviction.min_decayed_count() > 0 && meta->show_count < eviction.min_decayed_count();
    if (too_old || too_rare) {
      batch.DeleteRow(store_index_, key);
      batch.PutTombstone(store_index_, key, version);
      ++report.dropped;
    } else {
      if (decay != 1.0f) batch.PutRow(store_index_, key, record, layout_.row_bytes());
      ++report.kept;
    }
    if (batch.count() < kRowsPerScanBatch) return absl::OkStatus();
    absl::Status written = store_->Write(batch);
    batch = store_->NewBatch();
    return written;
  });
  if (status.ok() && !batch.empty()) status = store_->Write(batch);
  if (!status.ok()) return status;
  for (auto& shard : shards_) shard->cache.Clear();  // every row was flushed by the scan
  return report;
}

absl::Status EmbeddingTable::ForEachStoredRow(
    const std::function<absl::Status(uint64_t key, const char* record)>& fn) {
  auto locks = spiller_->LockAll();
  return ScanStoredRowsLocked([&](uint64_t key, char* record) { return fn(key, record); });
}

CacheStats EmbeddingTable::stats() const {
  CacheStats total;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    total.hits += shard->stats.hits;
    total.misses += shard->stats.misses;
    total.miss_nanos += shard->stats.miss_nanos;
    total.miss_cpu_nanos += shard->stats.miss_cpu_nanos;
    total.pushes_merged += shard->stats.pushes_merged;
    total.rows_written += shard->stats.rows_written;
    total.pushes_not_admitted += shard->stats.pushes_not_admitted;
    total.updates_refused += shard->stats.updates_refused;
    total.cached_rows += shard->cache.size();
    total.memory_bytes += shard->cache.memory_bytes() + shard->active_log.memory_bytes() +
                          shard->sealed_log.memory_bytes();
    total.logged_pushes += shard->active_log.size() + shard->sealed_log.size();
  }
  total.spills = spiller_->spills();
  total.spill_write_micros = spiller_->write_micros();
  total.spill_ingest_micros = spiller_->ingest_micros();
  total.push_wait_micros = push_wait_micros_.load(std::memory_order_relaxed);
  return total;
}

}  // namespace granary
