#include "ps/push_log.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr size_t kOperandBytes = 8;

std::string Operand(char c) { return std::string(kOperandBytes, c); }

std::vector<std::string> OperandsOf(const PushLog& log, uint64_t key) {
  std::vector<std::string> operands;
  for (uint32_t i = log.Head(key); i != PushLog::kEnd; i = log.Next(i)) {
    operands.emplace_back(log.Operand(i), kOperandBytes);
  }
  return operands;
}

TEST(PushLogTest, KeepsEachKeysOperandsInArrivalOrder) {
  PushLog log(kOperandBytes, 16);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(log.memory_bytes(), 0u);  // nothing allocated before the first push
  log.Append(7, Operand('a').data());
  log.Append(9, Operand('x').data());
  log.Append(7, Operand('b').data());
  log.Append(7, Operand('c').data());
  EXPECT_EQ(log.size(), 4u);
  EXPECT_TRUE(log.Contains(7));
  EXPECT_TRUE(log.Contains(9));
  EXPECT_FALSE(log.Contains(8));
  EXPECT_EQ(OperandsOf(log, 7),
            (std::vector<std::string>{Operand('a'), Operand('b'), Operand('c')}));
  EXPECT_EQ(OperandsOf(log, 9), (std::vector<std::string>{Operand('x')}));
  EXPECT_TRUE(OperandsOf(log, 8).empty());
  std::vector<std::pair<uint64_t, uint32_t>> heads;
  log.AppendHeads(&heads);
  std::sort(heads.begin(), heads.end());
  ASSERT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads[0].first, 7u);
  EXPECT_EQ(heads[1].first, 9u);
  EXPECT_EQ(heads[0].second, log.Head(7));
  EXPECT_EQ(log.Head(8), PushLog::kEnd);
}

TEST(PushLogTest, IsFullAtCapacityAndEmptyAfterClear) {
  PushLog log(kOperandBytes, 3);
  for (uint64_t key = 0; key < 3; ++key) {
    EXPECT_FALSE(log.full());
    log.Append(key, Operand('k').data());
  }
  EXPECT_TRUE(log.full());
  log.Clear();
  EXPECT_TRUE(log.empty());
  EXPECT_FALSE(log.full());
  EXPECT_FALSE(log.Contains(0));
  log.Append(5, Operand('n').data());
  EXPECT_EQ(OperandsOf(log, 5), (std::vector<std::string>{Operand('n')}));
}

TEST(PushLogTest, MemoryIsAllocatedOnceAndWithinTheBudget) {
  constexpr size_t kBudget = 1 << 20;
  const size_t capacity = PushLog::CapacityFor(kBudget, 80);
  PushLog log(80, capacity);
  std::string operand(80, 'g');
  log.Append(0, operand.data());
  const size_t allocated = log.memory_bytes();
  EXPECT_GT(allocated, 0u);
  EXPECT_LE(allocated, kBudget);
  for (uint64_t key = 1; !log.full(); ++key) log.Append(key % 1000, operand.data());
  EXPECT_EQ(log.memory_bytes(), allocated);  // filling it allocates nothing more
  log.Clear();
  EXPECT_LE(log.memory_bytes(), kBudget);
  EXPECT_EQ(PushLog::CapacityFor(10, 80), 1u);  // never zero
}

TEST(PushLogTest, SwapExchangesContents) {
  PushLog active(kOperandBytes, 4), sealed(kOperandBytes, 4);
  active.Append(1, Operand('a').data());
  active.Swap(sealed);
  EXPECT_TRUE(active.empty());
  EXPECT_EQ(OperandsOf(sealed, 1), (std::vector<std::string>{Operand('a')}));
}

}  // namespace
}  // namespace granary
