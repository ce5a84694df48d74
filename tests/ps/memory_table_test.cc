#include "ps/memory_table.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ps/initializer.h"

namespace granary {
namespace {

proto::TableConfig SgdTable(int dim, float lr) {
  proto::TableConfig config;
  config.set_name("t");
  config.set_dim(dim);
  config.mutable_optimizer()->mutable_sgd()->set_learning_rate(lr);
  return config;
}

TEST(MemoryTableTest, PullCreatesRowsWithTheInitializer) {
  proto::TableConfig config = SgdTable(3, 0.1f);
  config.mutable_initializer()->set_kind(proto::InitializerConfig::UNIFORM);
  config.mutable_initializer()->set_scale(1.0f);
  MemoryTable table(config);
  std::vector<uint64_t> keys = {9, 1, 9};
  std::vector<float> values(9);
  table.Pull(keys, values.data());
  EXPECT_EQ(table.size(), 2u);
  float expected[3];
  InitializeRow(config.initializer(), 9, 3, expected);
  for (int d = 0; d < 3; ++d) {
    EXPECT_EQ(values[d], expected[d]);
    EXPECT_EQ(values[6 + d], expected[d]);
  }
}

TEST(MemoryTableTest, PushAppliesSgdIncludingRepeatedKeys) {
  MemoryTable table(SgdTable(2, 0.5f));
  std::vector<uint64_t> keys = {1, 2, 1};
  std::vector<float> grads = {1, 2, 3, 4, 5, 6};
  table.Push(keys, grads.data());
  std::vector<float> values(4);
  std::vector<uint64_t> pulled = {1, 2};
  table.Pull(pulled, values.data());
  EXPECT_EQ(values, (std::vector<float>{-0.5f * (1 + 5), -0.5f * (2 + 6), -1.5f, -2.0f}));
}

TEST(MemoryTableTest, ConcurrentPushesAreAllApplied) {
  MemoryTable table(SgdTable(4, 1.0f));
  constexpr int kThreads = 4, kRounds = 200, kKeys = 500;
  std::vector<uint64_t> keys(kKeys);
  for (int i = 0; i < kKeys; ++i) keys[i] = i * 0x9e3779b97f4a7c15ULL;
  std::vector<float> ones(kKeys * 4, 1.0f);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) table.Push(keys, ones.data());
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<float> values(kKeys * 4);
  table.Pull(keys, values.data());
  for (float v : values) ASSERT_EQ(v, -static_cast<float>(kThreads * kRounds));
  EXPECT_EQ(table.size(), static_cast<size_t>(kKeys));
}

}  // namespace
}  // namespace granary
