#include "ps/embedding_table.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/random.h"
#include "glog/logging.h"
#include "ps/initializer.h"

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

// A push written as a merge operand: this header (the stamp the push gives the row), then the
// gradient, dim floats. Little-endian like the row records.
struct PushOperandHeader {
  uint32_t day;
  uint32_t reserved;  // zero
  uint64_t version;
};
static_assert(sizeof(PushOperandHeader) == 16, "a push operand's header is part of the format");

// The metadata change of one push, whether applied in the cache or by the merge operator.
void StampPush(uint32_t day, uint64_t version, RowMeta* meta) {
  meta->show_count += 1;
  meta->last_day = day;
  meta->update_count += 1;
  meta->version = version;
}

// The record of a row on first touch: zero metadata, initializer values, optimizer slots.
void InitializeRecord(const proto::TableConfig& config, const Optimizer& optimizer,
                      const RowLayout& layout, uint64_t key, char* record) {
  *layout.meta(record) = RowMeta();
  InitializeRow(config.initializer(), key, layout.dim(), layout.values(record));
  optimizer.InitSlots(layout.values(record), layout.slots(record), layout.dim());
}

size_t PushOperandBytes(const RowLayout& layout) {
  return sizeof(PushOperandHeader) + layout.dim() * sizeof(float);
}

// Applies one push operand (PushOperandHeader, then the gradient) to `record`: the push's stamp
// and optimizer update, exactly what Push does to a cached row.
void ApplyPushOperand(const Optimizer& optimizer, const RowLayout& layout, const char* operand,
                      char* record) {
  // Aligned copy: operand bytes (RocksDB's or a PushLog's) carry no alignment.
  thread_local std::vector<float> grad;
  const size_t dim = layout.dim();
  grad.resize(dim);
  PushOperandHeader header;
  std::memcpy(&header, operand, sizeof(header));
  std::memcpy(grad.data(), operand + sizeof(header), dim * sizeof(float));
  RowMeta* meta = layout.meta(record);
  StampPush(header.day, header.version, meta);
  const RowUpdate update{layout.values(record), layout.slots(record), meta, grad.data()};
  optimizer.Apply(absl::MakeConstSpan(&update, 1), layout.dim());
}

// Folds push operands into a row record: the stored record, or a new row's if there is none,
// then each push in order. An operand holds one or more pushes back to back (a spilled
// PushLog writes all of a key's pushes as one). RocksDB calls it on reads and compactions,
// from any of its threads.
class PushMergeOperator : public rocksdb::MergeOperator {
 public:
  PushMergeOperator(const proto::TableConfig& config, std::unique_ptr<Optimizer> optimizer)
      : config_(config),
        optimizer_(std::move(optimizer)),
        layout_(static_cast<int>(config.dim()), optimizer_->num_slots()) {}

  const char* Name() const override { return "granary.PushMergeOperator"; }

  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    const uint64_t key = RowStore::DecodeKey(in.key);
    const size_t row_bytes = layout_.row_bytes();
    const size_t operand_bytes = PushOperandBytes(layout_);
    if (in.existing_value != nullptr && in.existing_value->size() != row_bytes) {
      LOG(ERROR) << "table '" << config_.name() << "' key " << key << ": stored record has "
                 << in.existing_value->size() << " bytes, expected " << row_bytes;
      return false;  // RocksDB reports Corruption to the reader
    }
    // Aligned copies: RocksDB's bytes carry no alignment.
    thread_local std::vector<uint64_t> record_words;
    record_words.resize(RoundUpTo8(row_bytes) / sizeof(uint64_t));
    char* record = reinterpret_cast<char*>(record_words.data());
    if (in.existing_value != nullptr) {
      std::memcpy(record, in.existing_value->data(), row_bytes);
    } else {
      InitializeRecord(config_, *optimizer_, layout_, key, record);
    }
    for (const rocksdb::Slice& operand : in.operand_list) {
      if (operand.empty() || operand.size() % operand_bytes != 0) {
        LOG(ERROR) << "table '" << config_.name() << "' key " << key << ": push operand has "
                   << operand.size() << " bytes, expected a multiple of " << operand_bytes;
        return false;
      }
      for (size_t at = 0; at < operand.size(); at += operand_bytes) {
        ApplyPushOperand(*optimizer_, layout_, operand.data() + at, record);
      }
    }
    out->new_value.assign(record, row_bytes);
    return true;
  }

 private:
  const proto::TableConfig config_;
  const std::unique_ptr<Optimizer> optimizer_;
  const RowLayout layout_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> EmbeddingTable::NewMergeOperator(
    const proto::TableConfig& config) {
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(config.optimizer());
  if (!optimizer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("table '", config.name(), "': ", optimizer.status().message()));
  }
  return std::make_shared<PushMergeOperator>(config, *std::move(optimizer));
}

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
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(config.optimizer());
  if (!optimizer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("table '", config.name(), "': ", optimizer.status().message()));
  }
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
  if (table->merge_pushes_) {
    EmbeddingTable* raw = table.get();
    table->spiller_ = std::thread([raw] { raw->RunSpiller(); });
  }
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
  for (size_t s = 0; s < num_shards; ++s) {
    if (begin_of[s] == begin_of[s + 1]) continue;
    Shard& shard = *shards_[s];
    std::unique_lock<std::mutex> lock(shard.mutex);
    absl::Status status =
        fn(shard,
           absl::Span<const uint32_t>(order.data() + begin_of[s], begin_of[s + 1] - begin_of[s]),
           lock);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

void EmbeddingTable::InitializeRecord(uint64_t key, char* record) const {
  granary::InitializeRecord(config_, *optimizer_, layout_, key, record);
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
        InitializeRecord(keys[j], row);
      }
      shard.cache.set_live(slot, found[j] || !admission_enabled_);
    }
    slots->push_back(slot);
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
    thread_local std::vector<uint64_t> miss_keys;
    thread_local std::vector<std::pair<uint32_t, uint32_t>> hits;
    LookUp(shard, keys, positions, &hits, &misses);
    for (auto [i, slot] : hits) {
      std::memcpy(values + i * dim, layout_.values(shard.cache.row(slot)), dim * sizeof(float));
    }
    shard.stats.hits += positions.size() - misses.size();
    if (misses.empty()) return absl::OkStatus();
    // Evaluation caches nothing; training caches a miss while there is room, and then only
    // what the doorkeeper admits (RowCache::AdmitMiss). The rest, and rows with pushes in
    // a PushLog (never cached, see Shard), are read around the cache: rows with sealed
    // pushes as of the seal (see the class comment).
    to_cache.clear();
    to_read.clear();
    to_read_as_of_seal.clear();
    for (uint32_t i : misses) {
      if (!shard.sealed_log.empty() && shard.sealed_log.Contains(keys[i])) {
        to_read_as_of_seal.push_back(i);
        continue;
      }
      const bool cache =
          !read_only && !HasLoggedPushes(shard, keys[i]) &&
          (shard.cache.free_slots() > to_cache.size() || shard.cache.AdmitMiss(keys[i]));
      (cache ? to_cache : to_read).push_back(i);
    }
    absl::Status status = ReadAround(shard, keys, to_read, /*as_of=*/nullptr, read_only, values);
    if (status.ok()) {
      status =
          ReadAround(shard, keys, to_read_as_of_seal, sealed_snapshot_.get(), read_only, values);
    }
    if (!status.ok()) return status;
    // Chunks no larger than the shard, so one chunk's rows can all be cached at once.
    const size_t chunk = shard.cache.capacity();
    for (size_t begin = 0; begin < to_cache.size(); begin += chunk) {
      size_t end = std::min(to_cache.size(), begin + chunk);
      miss_keys.clear();
      for (size_t m = begin; m < end; ++m) miss_keys.push_back(keys[to_cache[m]]);
      thread_local std::vector<uint32_t> slots;
      status = LoadMisses(shard, miss_keys, &slots);
      if (!status.ok()) return status;
      for (size_t j = 0; j < slots.size(); ++j) {
        std::memcpy(values + to_cache[begin + j] * dim, layout_.values(shard.cache.row(slots[j])),
                    dim * sizeof(float));
      }
    }
    return absl::OkStatus();
  });
}

absl::Status EmbeddingTable::ReadAround(Shard& shard, absl::Span<const uint64_t> keys,
                                        absl::Span<const uint32_t> positions,
                                        const rocksdb::Snapshot* as_of, bool read_only,
                                        float* values) {
  if (positions.empty()) return absl::OkStatus();
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
    if (HasLoggedPushes(shard, miss_keys[j])) {
      char* row = reinterpret_cast<char*>(folded.data());
      if (found[j]) {
        std::memcpy(row, record, layout_.row_bytes());
      } else {
        InitializeRecord(miss_keys[j], row);
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

EmbeddingTable::~EmbeddingTable() {
  if (!spiller_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(spiller_mutex_);
    spiller_stop_ = true;
  }
  spiller_wakeup_.notify_one();
  spiller_.join();
}

void EmbeddingTable::RunSpiller() {
  pthread_setname_np(pthread_self(), "granary:spill");  // for top and perf
  std::unique_lock<std::mutex> lock(spiller_mutex_);
  while (true) {
    // After a failure the next Push spills itself, so that its caller gets the error.
    spiller_wakeup_.wait(lock, [&] {
      return spiller_stop_ || (spill_requested_.load(std::memory_order_relaxed) &&
                               !spill_failed_.load(std::memory_order_relaxed));
    });
    if (spiller_stop_) return;
    lock.unlock();
    absl::Status status = SpillPushLogs(/*always=*/false);
    if (!status.ok()) {
      LOG(WARNING) << "spilling push logs failed (the next push tries again): " << status;
      spill_failed_.store(true, std::memory_order_relaxed);
    }
    lock.lock();
  }
}

void EmbeddingTable::WakeSpiller() {
  { std::lock_guard<std::mutex> lock(spiller_mutex_); }  // no wake-up lost between check and wait
  spiller_wakeup_.notify_one();
}

absl::Status EmbeddingTable::Push(absl::Span<const uint64_t> keys, const float* grads) {
  if (spill_failed_.load(std::memory_order_relaxed)) {
    absl::Status status = SpillPushLogs(/*always=*/true);
    if (!status.ok()) return status;  // nothing of this push applied
    spill_failed_.store(false, std::memory_order_relaxed);
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
  if (spill_requested_.load(std::memory_order_relaxed) && spiller_.joinable()) WakeSpiller();
  for (int round = 1; status.ok() && !deferred.empty(); ++round) {
    if (round == kMaxRounds) {
      return absl::ResourceExhaustedError(absl::StrCat("table '", name(), "': ", deferred.size(),
                                                       " pushes found the push logs full ",
                                                       kMaxRounds, " times in a row"));
    }
    const absl::Time wait_start = absl::Now();
    status = SpillPushLogs(/*always=*/true);
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
        thread_local std::vector<uint64_t> miss_keys;
        thread_local std::vector<RowUpdate> updates;
        thread_local std::vector<uint32_t> slots;
        thread_local std::vector<std::pair<uint32_t, uint32_t>> hits;
        updates.clear();
        LookUp(shard, keys, positions, &hits, &misses);
        for (auto [i, slot] : hits) AddUpdate(shard, slot, grads + i * dim, &updates);
        shard.stats.hits += positions.size() - misses.size();
        // Applied before loading misses: loading may evict (write back) these very rows.
        optimizer_->Apply(updates, layout_.dim());
        // A cache with room loads its misses (a table that fits in memory never reads twice); a
        // full one would evict a row per miss, so logging the push is cheaper. A row with pushes
        // logged already is never loaded: its pushes stay in order in the log.
        to_load.clear();
        if (merge_pushes_) {
          const bool room = misses.size() <= shard.cache.free_slots();
          for (uint32_t i : misses) {
            if (room && !HasLoggedPushes(shard, keys[i])) {
              to_load.push_back(i);
            } else if (!shard.active_log.full()) {
              LogPush(shard, keys[i], grads + i * dim);
            } else {
              deferred->push_back(i);  // and so are the key's later pushes: the log stays full
            }
          }
          // Spill at three quarters full, so that pushes rarely find a log full.
          if (shard.active_log.size() >= shard.active_log.capacity() / 4 * 3) {
            spill_requested_.store(true, std::memory_order_relaxed);
          }
        } else {
          to_load.assign(misses.begin(), misses.end());
        }
        const size_t chunk = shard.cache.capacity();
        for (size_t begin = 0; begin < to_load.size(); begin += chunk) {
          size_t end = std::min(to_load.size(), begin + chunk);
          miss_keys.clear();
          for (size_t m = begin; m < end; ++m) miss_keys.push_back(keys[to_load[m]]);
          absl::Status status = LoadMisses(shard, miss_keys, &slots);
          if (!status.ok()) return status;
          updates.clear();
          for (size_t j = 0; j < slots.size(); ++j) {
            AddUpdate(shard, slots[j], grads + to_load[begin + j] * dim, &updates);
          }
          optimizer_->Apply(updates, layout_.dim());
        }
        return absl::OkStatus();
      });
}

bool EmbeddingTable::HasLoggedPushes(const Shard& shard, uint64_t key) const {
  return (!shard.sealed_log.empty() && shard.sealed_log.Contains(key)) ||
         (!shard.active_log.empty() && shard.active_log.Contains(key));
}

template <typename Fn>
void EmbeddingTable::ForEachLoggedPush(const Shard& shard, uint64_t key, uint32_t sealed_head,
                                       bool include_active, Fn fn) {
  for (uint32_t i = sealed_head; i != PushLog::kEnd; i = shard.sealed_log.Next(i)) {
    fn(shard.sealed_log.Operand(i));
  }
  if (!include_active) return;
  for (uint32_t i = shard.active_log.Head(key); i != PushLog::kEnd; i = shard.active_log.Next(i)) {
    fn(shard.active_log.Operand(i));
  }
}

void EmbeddingTable::ApplyLoggedPushes(const Shard& shard, uint64_t key, char* record) const {
  ForEachLoggedPush(
      shard, key, shard.sealed_log.Head(key), /*include_active=*/true,
      [&](const char* operand) { ApplyPushOperand(*optimizer_, layout_, operand, record); });
}

void EmbeddingTable::LogPush(Shard& shard, uint64_t key, const float* grad) {
  const size_t dim = layout_.dim();
  const PushOperandHeader header{stamp_->day.load(std::memory_order_relaxed), 0,
                                 stamp_->version.load(std::memory_order_relaxed)};
  thread_local std::vector<char> operand;
  operand.resize(sizeof(header) + dim * sizeof(float));
  std::memcpy(operand.data(), &header, sizeof(header));
  std::memcpy(operand.data() + sizeof(header), grad, dim * sizeof(float));
  shard.active_log.Append(key, operand.data());
  ++shard.stats.pushes_merged;
}

absl::Status EmbeddingTable::WriteLogs(bool include_active,
                                       std::unique_ptr<RowStore::MergeFile>* file) {
  absl::StatusOr<std::unique_ptr<RowStore::MergeFile>> created = store_->NewMergeFile(store_index_);
  if (!created.ok()) return created.status();
  *file = *std::move(created);
  // (key, its oldest push in the sealed log) for every logged key; with include_active, keys
  // only in the active log come with PushLog::kEnd.
  std::vector<std::pair<uint64_t, uint32_t>> heads;
  std::vector<std::pair<uint64_t, uint32_t>> active_heads;
  for (const auto& shard : shards_) {
    shard->sealed_log.AppendHeads(&heads);
    if (!include_active) continue;
    active_heads.clear();
    shard->active_log.AppendHeads(&active_heads);
    for (const auto& [key, head] : active_heads) {
      if (!shard->sealed_log.Contains(key)) heads.emplace_back(key, PushLog::kEnd);
    }
  }
  std::sort(heads.begin(), heads.end());  // each key once: it lives in one shard
  const size_t operand_bytes = PushOperandBytes(layout_);
  const uint64_t mask = shards_.size() - 1;
  // Keys in order visit the logs' operands in random order: start loading a few keys ahead.
  auto prefetch = [&](size_t h) {
    if (h >= heads.size() || heads[h].second == PushLog::kEnd) return;
    const char* operand = shards_[heads[h].first & mask]->sealed_log.Operand(heads[h].second);
    __builtin_prefetch(operand);
    __builtin_prefetch(operand + operand_bytes - 1);
  };
  for (size_t h = 0; h < kPrefetchDistance; ++h) prefetch(h);
  std::string operands;  // all of a key's pushes, in order, as one operand
  for (size_t h = 0; h < heads.size(); ++h) {
    prefetch(h + kPrefetchDistance);
    const auto [key, head] = heads[h];
    const Shard& shard = *shards_[key & mask];
    absl::string_view pushes;
    if (!include_active && shard.sealed_log.Next(head) == PushLog::kEnd) {
      // Most spilled keys were pushed once: their operand is passed as it lies in the log.
      pushes = absl::string_view(shard.sealed_log.Operand(head), operand_bytes);
    } else {
      operands.clear();
      ForEachLoggedPush(shard, key, head, include_active,
                        [&](const char* operand) { operands.append(operand, operand_bytes); });
      pushes = operands;
    }
    absl::Status status = (*file)->Add(key, pushes);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::IngestLogs(RowStore::MergeFile& file) {
  may_have_stored_rows_.store(true, std::memory_order_release);
  absl::Status status = store_->IngestMergeFile(file);
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("table '", name(), "': writing ", file.count(),
                                                  " rows' logged pushes: ", status.message()));
}

void EmbeddingTable::ClearIngestedLogs(bool include_active) {
  for (auto& shard : shards_) {
    shard->sealed_log.Clear();
    if (include_active) shard->active_log.Clear();
  }
  sealed_snapshot_.reset();
  spills_.fetch_add(1, std::memory_order_relaxed);
}

absl::Status EmbeddingTable::SpillPushLogs(bool always) {
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
    for (auto& shard : shards_) {
      if (shard->sealed_log.empty()) shard->active_log.Swap(shard->sealed_log);
    }
    sealed_snapshot_ = store_->NewSnapshot();
  }
  // Sealed logs change only under spill_mutex_, so they are read here without shard locks.
  std::unique_ptr<RowStore::MergeFile> file;
  const absl::Time write_start = absl::Now();
  absl::Status status = WriteLogs(/*include_active=*/false, &file);
  const absl::Time ingest_start = absl::Now();
  spill_write_micros_.fetch_add(absl::ToInt64Microseconds(ingest_start - write_start),
                                std::memory_order_relaxed);
  // Pulls and pushes go on during the ingest: until the sealed logs are emptied, pulls read
  // sealed rows as of the seal, so they see the sealed pushes once, from the logs.
  if (status.ok()) status = IngestLogs(*file);
  if (status.ok()) {
    std::vector<std::unique_lock<std::mutex>> locks = LockShards();
    ClearIngestedLogs(/*include_active=*/false);
  }
  spill_ingest_micros_.fetch_add(absl::ToInt64Microseconds(absl::Now() - ingest_start),
                                 std::memory_order_relaxed);
  if (!status.ok()) spill_requested_.store(true, std::memory_order_relaxed);  // to retry
  return status;
}

std::vector<std::unique_lock<std::mutex>> EmbeddingTable::LockShards() {
  std::vector<std::unique_lock<std::mutex>> locks;
  for (auto& shard : shards_) locks.emplace_back(shard->mutex);
  return locks;
}

std::vector<std::unique_lock<std::mutex>> EmbeddingTable::LockAllShards() {
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.emplace_back(spill_mutex_);  // first, as SpillPushLogs takes it
  for (auto& shard : shards_) locks.emplace_back(shard->mutex);
  return locks;
}

absl::Status EmbeddingTable::FlushLocked() {
  bool logged = false;
  for (auto& shard : shards_) logged |= !shard->sealed_log.empty() || !shard->active_log.empty();
  if (logged) {
    std::unique_ptr<RowStore::MergeFile> file;
    absl::Status status = WriteLogs(/*include_active=*/true, &file);
    if (status.ok()) status = IngestLogs(*file);
    if (!status.ok()) return status;
    ClearIngestedLogs(/*include_active=*/true);
  }
  for (auto& shard : shards_) {
    std::vector<uint32_t> dirty;
    shard->cache.ForEachDirty([&](uint32_t slot) { dirty.push_back(slot); });
    absl::Status status = WriteBack(*shard, dirty);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status EmbeddingTable::FlushDirtyRows() {
  auto locks = LockAllShards();
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
  auto locks = LockAllShards();
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
  auto locks = LockAllShards();
  return ScanStoredRowsLocked([&](uint64_t key, char* record) { return fn(key, record); });
}

CacheStats EmbeddingTable::stats() const {
  CacheStats total;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    total.hits += shard->stats.hits;
    total.misses += shard->stats.misses;
    total.pushes_merged += shard->stats.pushes_merged;
    total.rows_written += shard->stats.rows_written;
    total.pushes_not_admitted += shard->stats.pushes_not_admitted;
    total.cached_rows += shard->cache.size();
    total.memory_bytes += shard->cache.memory_bytes() + shard->active_log.memory_bytes() +
                          shard->sealed_log.memory_bytes();
    total.logged_pushes += shard->active_log.size() + shard->sealed_log.size();
  }
  total.spills = spills_.load(std::memory_order_relaxed);
  total.spill_write_micros = spill_write_micros_.load(std::memory_order_relaxed);
  total.spill_ingest_micros = spill_ingest_micros_.load(std::memory_order_relaxed);
  total.push_wait_micros = push_wait_micros_.load(std::memory_order_relaxed);
  return total;
}

}  // namespace granary
