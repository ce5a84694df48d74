#include "ps/row_cache.h"

#include <algorithm>
#include <cstring>

namespace granary {
namespace {

// Fibonacci hashing: keys of one shard share their low bits, so the doorkeeper's index comes
// from the high half of the product, which depends on all of them.
constexpr uint64_t kGoldenRatio64 = 0x9e3779b97f4a7c15ULL;

}  // namespace

RowCache::RowCache(size_t row_bytes, uint32_t capacity)
    : row_bytes_(row_bytes),
      capacity_(capacity),
      // Uninitialized on purpose: pages are touched (and counted in RSS) only when used.
      rows_(new char[static_cast<size_t>(capacity) * row_bytes]),
      keys_(new uint64_t[capacity]),
      flags_(new uint8_t[capacity]),
      doorkeeper_(std::max<uint32_t>(1, capacity / kRowsPerDoorkeeperEntry), 0) {
  std::memset(flags_.get(), 0, capacity);
  free_slots_.reserve(capacity);
  for (uint32_t slot = capacity; slot > 0; --slot) free_slots_.push_back(slot - 1);
  slot_of_key_.reserve(capacity);
}

size_t RowCache::memory_bytes() const {
  return static_cast<size_t>(capacity_) * (row_bytes_ + sizeof(uint64_t) + sizeof(uint8_t)) +
         free_slots_.capacity() * sizeof(uint32_t) + doorkeeper_.size() * sizeof(uint64_t) +
         slot_of_key_.capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
}

uint32_t RowCache::Find(uint64_t key) {
  auto it = slot_of_key_.find(key);
  if (it == slot_of_key_.end()) return kNoSlot;
  const uint32_t slot = it->second;
  const uint8_t count = use_count(slot);
  if (count < kMaxUseCount) SetUseCount(slot, count + 1);
  return slot;
}

bool RowCache::AdmitMiss(uint64_t key) {
  // Key 0 doubles as "empty": at worst that key is admitted one miss early.
  uint64_t& remembered = doorkeeper_[((key * kGoldenRatio64) >> 32) % doorkeeper_.size()];
  if (remembered == key) {
    remembered = 0;
    return true;
  }
  remembered = key;
  return false;
}

uint32_t RowCache::Insert(uint64_t key) {
  uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  keys_[slot] = key;
  flags_[slot] = kInUse;  // use count 0: evicted at the hand's next pass unless hit
  slot_of_key_.emplace(key, slot);
  return slot;
}

void RowCache::SelectVictims(uint32_t count, std::vector<uint32_t>* victims) {
  // After kMaxUseCount + 1 sweeps every slot has been chosen, so the loop always terminates.
  uint64_t steps_left = (kMaxUseCount + 1ULL) * capacity_ + 1;
  size_t chosen = 0;
  while (chosen < count && steps_left-- > 0) {
    uint32_t slot = hand_;
    hand_ = hand_ + 1 == capacity_ ? 0 : hand_ + 1;
    if (!(flags_[slot] & kInUse)) continue;
    const uint8_t use = use_count(slot);
    if (use > 0) {
      SetUseCount(slot, use - 1);
      continue;
    }
    // A chosen slot needs kMaxUseCount + 1 more passes to reach zero again: no later pass of
    // this call can pick it twice.
    SetUseCount(slot, kMaxUseCount);
    victims->push_back(slot);
    ++chosen;
  }
}

void RowCache::Evict(const std::vector<uint32_t>& slots) {
  for (uint32_t slot : slots) {
    if (!(flags_[slot] & kInUse)) continue;
    slot_of_key_.erase(keys_[slot]);
    flags_[slot] = 0;
    free_slots_.push_back(slot);
  }
}

void RowCache::Clear() {
  slot_of_key_.clear();
  slot_of_key_.reserve(capacity_);  // clear() may release a large table
  free_slots_.clear();
  std::memset(flags_.get(), 0, capacity_);
  for (uint32_t slot = capacity_; slot > 0; --slot) free_slots_.push_back(slot - 1);
  std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
  hand_ = 0;
}

}  // namespace granary
