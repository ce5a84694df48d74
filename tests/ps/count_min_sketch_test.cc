#include "ps/count_min_sketch.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

TEST(CountMinSketchTest, NeverUnderestimatesAndRarelyOverestimatesMuch) {
  CountMinSketch sketch(1 << 14);
  // Key k is counted k % 7 + 1 times; 20,000 distinct keys in 16,384 counters per row.
  for (uint64_t key = 0; key < 20000; ++key) {
    for (uint64_t i = 0; i <= key % 7; ++i) sketch.Increment(key * 0x9e3779b97f4a7c15ULL);
  }
  // The guarantee: over-estimate <= e * N / width (N = 80,000 increments: 13.3) with
  // probability >= 1 - e^-4 (98 %).
  int beyond_bound = 0;
  for (uint64_t key = 0; key < 20000; ++key) {
    uint32_t estimate = sketch.Estimate(key * 0x9e3779b97f4a7c15ULL);
    ASSERT_GE(estimate, key % 7 + 1);
    beyond_bound += estimate - (key % 7 + 1) > 13;
  }
  EXPECT_LT(beyond_bound, 20000 * 2 / 100);
  EXPECT_EQ(sketch.memory_bytes(), 4u * 4u * (1u << 14));
}

TEST(CountMinSketchTest, IncrementReturnsTheNewEstimateAndConcurrentCountsAreNotLost) {
  CountMinSketch sketch(1024);
  EXPECT_EQ(sketch.Increment(42), 1u);
  EXPECT_EQ(sketch.Increment(42), 2u);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) sketch.Increment(7);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_GE(sketch.Estimate(7), 40000u);
}

}  // namespace
}  // namespace granary
