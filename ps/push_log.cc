#include "ps/push_log.h"

#include <algorithm>
#include <cstring>

#include "glog/logging.h"

namespace granary {

size_t PushLog::CapacityFor(size_t memory_bytes, size_t operand_bytes) {
  return std::max<size_t>(1, memory_bytes / (operand_bytes + kOverheadBytesPerOperand));
}

PushLog::PushLog(size_t operand_bytes, size_t capacity)
    : operand_bytes_(operand_bytes), capacity_(capacity) {
  CHECK_GT(operand_bytes, 0u);
  CHECK_GE(capacity, 1u);
}

size_t PushLog::memory_bytes() const {
  return operands_.capacity() + next_.capacity() * sizeof(uint32_t) +
         chains_.capacity() * (sizeof(std::pair<uint64_t, Chain>) + 1);
}

void PushLog::Append(uint64_t key, const char* operand) {
  DCHECK(!full());
  if (operands_.capacity() == 0) {
    // Everything at once: no growth later, so memory_bytes() is the bound from the start.
    operands_.reserve(capacity_ * operand_bytes_);
    next_.reserve(capacity_);
    chains_.reserve(capacity_);
  }
  const uint32_t index = static_cast<uint32_t>(next_.size());
  operands_.insert(operands_.end(), operand, operand + operand_bytes_);
  next_.push_back(kEnd);
  auto [it, inserted] = chains_.try_emplace(key, Chain{index, index});
  if (!inserted) {
    next_[it->second.last] = index;
    it->second.last = index;
  }
}

void PushLog::AppendHeads(std::vector<std::pair<uint64_t, uint32_t>>* heads) const {
  for (const auto& [key, chain] : chains_) heads->emplace_back(key, chain.first);
}

uint32_t PushLog::Head(uint64_t key) const {
  auto it = chains_.find(key);
  return it == chains_.end() ? kEnd : it->second.first;
}

void PushLog::Clear() {
  operands_.clear();
  next_.clear();
  if (chains_.capacity() > 0) {
    chains_.clear();  // frees a large table's array: take the whole capacity again
    chains_.reserve(capacity_);
  }
}

void PushLog::Swap(PushLog& other) {
  std::swap(operand_bytes_, other.operand_bytes_);
  std::swap(capacity_, other.capacity_);
  operands_.swap(other.operands_);
  next_.swap(other.next_);
  chains_.swap(other.chains_);
}

}  // namespace granary
