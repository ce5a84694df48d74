// CountMinSketch: approximate per-key counts in fixed memory, for feature admission.
//
// depth rows of width 32-bit saturating counters; a key's count is the minimum of its
// counters, which over-estimates by at most e * N / width with probability 1 - e^-depth
// (Cormode & Muthukrishnan 2005). Over-estimation only admits a key slightly early; a count
// is never under-estimated, so no key waits longer than min_count pushes.
//
// Thread-safe: counters are relaxed atomics; concurrent increments are never lost.
#ifndef GRANARY_PS_COUNT_MIN_SKETCH_H_
#define GRANARY_PS_COUNT_MIN_SKETCH_H_

#include <atomic>
#include <cstdint>
#include <memory>

namespace granary {

class CountMinSketch {
 public:
  static constexpr int kDepth = 4;

  // REQUIRES: width >= 1.
  explicit CountMinSketch(uint32_t width);
  CountMinSketch(const CountMinSketch&) = delete;
  CountMinSketch& operator=(const CountMinSketch&) = delete;

  // Adds one to `key`'s count and returns its new estimate.
  uint32_t Increment(uint64_t key);
  uint32_t Estimate(uint64_t key) const;

  size_t memory_bytes() const { return sizeof(std::atomic<uint32_t>) * kDepth * width_; }

 private:
  size_t Cell(int row, uint64_t key) const;

  const uint32_t width_;
  std::unique_ptr<std::atomic<uint32_t>[]> counters_;
};

}  // namespace granary

#endif  // GRANARY_PS_COUNT_MIN_SKETCH_H_
