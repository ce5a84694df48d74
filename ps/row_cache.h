// RowCache: one shard of a table's write-back row cache.
//
// A fixed number of row slots, allocated once from a byte budget, a key -> slot map reserved
// to that size, generalized CLOCK replacement and dirty bits. Nothing grows after
// construction, so a cache's memory is known up front:
// memory_bytes() <= capacity * (row_bytes + kMaxOverheadBytesPerRow).
//
// Replacement is frequency-aware, for skewed (Zipf) access where most keys are seen once: a
// slot keeps a small use count (each hit adds one, up to kMaxUseCount) which the sweeping
// hand takes one from, evicting slots it finds at zero. A row enters at zero, so a key seen
// once is evicted the first time the hand passes, while a row hit a few times survives that
// many sweeps. (Plain CLOCK gave new rows a referenced bit: every one-hit key then survived
// two sweeps, crowding out hot rows.)
//
// Eviction is two-step so that a dirty row is never dropped before it is safely written:
// SelectVictims() picks slots, the caller writes the dirty ones to RocksDB, and only then
// Evict() frees them.
//
// Thread-compatible: the owning EmbeddingTable locks a shard around every call.
#ifndef GRANARY_PS_ROW_CACHE_H_
#define GRANARY_PS_ROW_CACHE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace granary {

class RowCache {
 public:
  // Upper bound of what a cached row costs beyond its record: its key (8), flags (1), free-list
  // entry (4), its share of the doorkeeper (8 / kRowsPerDoorkeeperEntry = 2) and of the hash
  // map (16-byte entries plus a control byte at a load factor of at least 7/16 after
  // power-of-two rounding: < 39).
  static constexpr size_t kMaxOverheadBytesPerRow = 54;
  // Cache rows per doorkeeper entry (see AdmitMiss). A smaller doorkeeper remembers misses for
  // a shorter time and so admits fewer keys; at a quarter of the capacity, simulated Zipf(1.1)
  // access hit within 1 % of the best static choice (the hottest keys).
  static constexpr uint32_t kRowsPerDoorkeeperEntry = 4;
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  // Sweeps a row hit this often survives without another hit.
  static constexpr uint8_t kMaxUseCount = 3;

  // REQUIRES: row_bytes % 8 == 0, capacity >= 1.
  RowCache(size_t row_bytes, uint32_t capacity);
  RowCache(const RowCache&) = delete;
  RowCache& operator=(const RowCache&) = delete;

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return capacity_ - static_cast<uint32_t>(free_slots_.size()); }
  uint32_t free_slots() const { return static_cast<uint32_t>(free_slots_.size()); }
  // Bytes this shard allocated: slots, keys, flags, free list and hash map.
  size_t memory_bytes() const;

  // The slot holding `key`, its use count raised by one; kNoSlot if absent.
  uint32_t Find(uint64_t key);

  // Starts loading the hash-map memory Find(key) will read, so that a caller looking up many
  // keys overlaps their cache misses. No effect on contents.
  void PrefetchKey(uint64_t key) const { slot_of_key_.prefetch(key); }
  // Starts loading the row bytes of `slot` for writing.
  void PrefetchRow(uint32_t slot) const {
    const char* row = rows_.get() + static_cast<size_t>(slot) * row_bytes_;
    for (size_t offset = 0; offset < row_bytes_; offset += kCacheLineBytes) {
      __builtin_prefetch(row + offset, /*rw=*/1);
    }
    __builtin_prefetch(row + row_bytes_ - 1, /*rw=*/1);  // a row need not start on a line
  }

  // Admission of a missed key to a full cache: true if the doorkeeper remembers `key` from a
  // recent miss (it then forgets it), so that caching it is likely to pay; otherwise it
  // remembers `key` instead of whatever shared its entry, and returns false. A key seen once
  // under skewed access is mostly never seen again, and caching it would evict a hot row.
  // The doorkeeper is a direct-mapped table of capacity / kRowsPerDoorkeeperEntry keys.
  bool AdmitMiss(uint64_t key);

  // Takes a free slot for `key`, use count zero; its row bytes are uninitialized.
  // REQUIRES: free_slots() > 0 and `key` not cached.
  uint32_t Insert(uint64_t key);

  // Appends to `victims` up to `count` distinct cached slots whose use count the hand found
  // at zero (taking one from each count it passes). They stay cached until Evict().
  void SelectVictims(uint32_t count, std::vector<uint32_t>* victims);

  // Removes the slots from the cache. Their dirty rows are dropped: write them first.
  void Evict(const std::vector<uint32_t>& slots);

  // Removes every row. Dirty rows are dropped: flush them first.
  void Clear();

  char* row(uint32_t slot) { return rows_.get() + static_cast<size_t>(slot) * row_bytes_; }
  uint64_t key(uint32_t slot) const { return keys_[slot]; }
  uint8_t use_count(uint32_t slot) const { return (flags_[slot] & kUseCountMask) >> kUseShift; }

  bool dirty(uint32_t slot) const { return flags_[slot] & kDirty; }
  void set_dirty(uint32_t slot, bool dirty) { SetFlag(slot, kDirty, dirty); }
  // "Live" rows exist in the model: found in RocksDB or admitted. A cached row that is not
  // live holds a key's initial value only (see AdmissionConfig).
  bool live(uint32_t slot) const { return flags_[slot] & kLive; }
  void set_live(uint32_t slot, bool live) { SetFlag(slot, kLive, live); }

  // Calls fn(slot) for every dirty slot.
  template <typename Fn>
  void ForEachDirty(Fn fn) const {
    for (uint32_t slot = 0; slot < capacity_; ++slot) {
      if ((flags_[slot] & (kInUse | kDirty)) == (kInUse | kDirty)) fn(slot);
    }
  }

 private:
  static constexpr uint8_t kInUse = 1, kDirty = 4, kLive = 8;
  // The use count lives in bits 4 and 5 of a slot's flags.
  static constexpr int kUseShift = 4;
  static constexpr uint8_t kUseCountMask = 0x30;
  static_assert(kMaxUseCount <= (kUseCountMask >> kUseShift), "use count must fit its bits");
  void SetUseCount(uint32_t slot, uint8_t count) {
    flags_[slot] = (flags_[slot] & ~kUseCountMask) | (count << kUseShift);
  }
  static constexpr size_t kCacheLineBytes = 64;
  void SetFlag(uint32_t slot, uint8_t flag, bool on) {
    flags_[slot] = on ? (flags_[slot] | flag) : (flags_[slot] & ~flag);
  }

  const size_t row_bytes_;
  const uint32_t capacity_;
  std::unique_ptr<char[]> rows_;  // capacity_ * row_bytes_, 8-byte aligned by new[]
  std::unique_ptr<uint64_t[]> keys_;
  std::unique_ptr<uint8_t[]> flags_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint64_t> doorkeeper_;  // recently missed keys, by DoorkeeperIndex
  absl::flat_hash_map<uint64_t, uint32_t> slot_of_key_;
  uint32_t hand_ = 0;
};

}  // namespace granary

#endif  // GRANARY_PS_ROW_CACHE_H_
