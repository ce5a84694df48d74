// PushLog: pushes to rows a table's cache does not hold, kept in memory in arrival order and
// indexed by key, until they are written to RocksDB together as one sorted file.
//
// Writing each such push to RocksDB at once (a merge operand in the memtable) cost ~1.8 µs of
// skip-list insertion per push, most of an uncached push's cost; appending here costs a hash
// lookup and a copy, and the sorted file is written sequentially (ps/spiller.h "spills").
//
// An operand is a fixed number of bytes (the table's push operand). Capacity is fixed at
// construction, so memory_bytes() is known up front; the storage is allocated on the first
// Append, so a table that never spills costs nothing.
//
// Thread-compatible: the owner (ShardPushLogs, ps/spiller.h) locks the shard around every
// call, except that a spill reads a sealed log under the spill lock alone, since only a spill
// changes it.
#ifndef GRANARY_PS_PUSH_LOG_H_
#define GRANARY_PS_PUSH_LOG_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace granary {

class PushLog {
 public:
  // Memory per operand beyond its bytes: the chain link (4) and the key map (an entry of 16
  // bytes and a control byte, at a load factor of at least 7/16: < 39).
  static constexpr size_t kOverheadBytesPerOperand = 43;

  // How many operands of `operand_bytes` fit in `memory_bytes` (at least 1).
  static size_t CapacityFor(size_t memory_bytes, size_t operand_bytes);

  // REQUIRES: operand_bytes > 0, capacity >= 1.
  PushLog(size_t operand_bytes, size_t capacity);
  PushLog(const PushLog&) = delete;
  PushLog& operator=(const PushLog&) = delete;

  size_t size() const { return next_.size(); }
  bool empty() const { return next_.empty(); }
  bool full() const { return next_.size() >= capacity_; }
  size_t capacity() const { return capacity_; }
  size_t operand_bytes() const { return operand_bytes_; }
  // Bytes allocated: 0 until the first Append, then the whole capacity's.
  size_t memory_bytes() const;

  // Appends `operand` (operand_bytes) for `key`. REQUIRES: !full().
  void Append(uint64_t key, const char* operand);
  bool Contains(uint64_t key) const { return chains_.contains(key); }
  // A key's operands, oldest first, by index: Head(key) is the index of its oldest (kEnd if
  // none), Next(i) of its next one (kEnd after the last), Operand(i) their bytes.
  static constexpr uint32_t kEnd = UINT32_MAX;
  // Appends (key, Head(key)) for every key held, in no particular order.
  void AppendHeads(std::vector<std::pair<uint64_t, uint32_t>>* heads) const;
  uint32_t Head(uint64_t key) const;
  uint32_t Next(uint32_t index) const { return next_[index]; }
  const char* Operand(uint32_t index) const {
    return operands_.data() + size_t{index} * operand_bytes_;
  }
  // Forgets every operand, keeping the allocation.
  void Clear();
  void Swap(PushLog& other);

 private:
  struct Chain {
    uint32_t first;
    uint32_t last;
  };
  size_t operand_bytes_;
  size_t capacity_;
  std::vector<char> operands_;  // operand i at i * operand_bytes_
  std::vector<uint32_t> next_;  // next operand of the same key, or kEnd
  absl::flat_hash_map<uint64_t, Chain> chains_;
};

}  // namespace granary

#endif  // GRANARY_PS_PUSH_LOG_H_
