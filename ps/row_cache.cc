#include "ps/row_cache.h"

#include <cstring>

namespace granary {

RowCache::RowCache(size_t row_bytes, uint32_t capacity)
    : row_bytes_(row_bytes),
      capacity_(capacity),
      // Uninitialized on purpose: pages are touched (and counted in RSS) only when used.
      rows_(new char[static_cast<size_t>(capacity) * row_bytes]),
      keys_(new uint64_t[capacity]),
      flags_(new uint8_t[capacity]) {
  std::memset(flags_.get(), 0, capacity);
  free_slots_.reserve(capacity);
  for (uint32_t slot = capacity; slot > 0; --slot) free_slots_.push_back(slot - 1);
  slot_of_key_.reserve(capacity);
}

size_t RowCache::memory_bytes() const {
  return static_cast<size_t>(capacity_) * (row_bytes_ + sizeof(uint64_t) + sizeof(uint8_t)) +
         free_slots_.capacity() * sizeof(uint32_t) +
         slot_of_key_.capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
}

uint32_t RowCache::Find(uint64_t key) {
  auto it = slot_of_key_.find(key);
  if (it == slot_of_key_.end()) return kNoSlot;
  flags_[it->second] |= kReferenced;
  return it->second;
}

uint32_t RowCache::Insert(uint64_t key) {
  uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  keys_[slot] = key;
  flags_[slot] = kInUse | kReferenced;
  slot_of_key_.emplace(key, slot);
  return slot;
}

void RowCache::SelectVictims(uint32_t count, std::vector<uint32_t>* victims) {
  // Two full sweeps clear every referenced bit once, so the loop always terminates.
  uint64_t steps_left = 2ULL * capacity_ + 1;
  size_t chosen = 0;
  while (chosen < count && steps_left-- > 0) {
    uint32_t slot = hand_;
    hand_ = hand_ + 1 == capacity_ ? 0 : hand_ + 1;
    uint8_t& flags = flags_[slot];
    if (!(flags & kInUse)) continue;
    if (flags & kReferenced) {
      flags &= ~kReferenced;
      continue;
    }
    // Mark referenced so a second pass of this call does not pick it again.
    flags |= kReferenced;
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
  hand_ = 0;
}

}  // namespace granary
