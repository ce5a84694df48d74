#include "ps/count_min_sketch.h"

#include <xxhash.h>

#include <algorithm>
#include <limits>

namespace granary {

CountMinSketch::CountMinSketch(uint32_t width)
    : width_(width), counters_(new std::atomic<uint32_t>[static_cast<size_t>(kDepth) * width]) {
  for (size_t i = 0; i < static_cast<size_t>(kDepth) * width_; ++i) {
    counters_[i].store(0, std::memory_order_relaxed);
  }
}

size_t CountMinSketch::Cell(int row, uint64_t key) const {
  // Independent hash per row: XXH3 of the key seeded by the row number.
  uint64_t hash = XXH3_64bits_withSeed(&key, sizeof(key), static_cast<uint64_t>(row) + 1);
  return static_cast<size_t>(row) * width_ + hash % width_;
}

uint32_t CountMinSketch::Increment(uint64_t key) {
  uint32_t estimate = std::numeric_limits<uint32_t>::max();
  for (int row = 0; row < kDepth; ++row) {
    std::atomic<uint32_t>& counter = counters_[Cell(row, key)];
    uint32_t value = counter.load(std::memory_order_relaxed);
    // Saturate instead of wrapping to zero.
    while (value != std::numeric_limits<uint32_t>::max() &&
           !counter.compare_exchange_weak(value, value + 1, std::memory_order_relaxed)) {
    }
    estimate =
        std::min(estimate, value == std::numeric_limits<uint32_t>::max() ? value : value + 1);
  }
  return estimate;
}

uint32_t CountMinSketch::Estimate(uint64_t key) const {
  uint32_t estimate = std::numeric_limits<uint32_t>::max();
  for (int row = 0; row < kDepth; ++row) {
    estimate = std::min(estimate, counters_[Cell(row, key)].load(std::memory_order_relaxed));
  }
  return estimate;
}

}  // namespace granary
