// MemoryTable: one named embedding table held in memory (RocksDB comes later), with plain
// SGD applied on the server.
//
// Rows are created on first touch with the table's deterministic initializer. Storage is
// split into stripes by key; a request locks each stripe it touches once, never once per row,
// so concurrent requests from many workers proceed in parallel on different stripes.
//
// Thread-safe: Pull and Push may be called concurrently from any number of threads.
#ifndef GRANARY_PS_MEMORY_TABLE_H_
#define GRANARY_PS_MEMORY_TABLE_H_

#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "common/proto/config.pb.h"

namespace granary {

class MemoryTable {
 public:
  // REQUIRES: config passed ValidateClusterConfig.
  explicit MemoryTable(const proto::TableConfig& config);
  MemoryTable(const MemoryTable&) = delete;
  MemoryTable& operator=(const MemoryTable&) = delete;

  const std::string& name() const { return config_.name(); }
  int dim() const { return static_cast<int>(config_.dim()); }

  // Copies the rows of `keys` into `values` (keys.size() * dim floats, row-major), creating
  // missing rows.
  void Pull(absl::Span<const uint64_t> keys, float* values);

  // Applies row -= learning_rate * grad for each key; `grads` holds keys.size() * dim floats.
  // Duplicate keys in one call are applied one after another.
  void Push(absl::Span<const uint64_t> keys, const float* grads);

  // Number of rows stored.
  size_t size() const;

 private:
  // Power of two; enough stripes that a few handler threads rarely wait on each other.
  static constexpr int kNumStripes = 64;

  struct Stripe {
    mutable std::mutex mutex;
    absl::flat_hash_map<uint64_t, uint32_t> row_of_key;  // key -> row index in values
    std::vector<float> values;                           // rows of dim floats
  };

  // Returns the row of `key` in `stripe`, creating it. REQUIRES: stripe.mutex held.
  float* FindOrCreateRow(Stripe& stripe, uint64_t key);

  // Calls fn(stripe, positions) once per stripe touched by `keys`, with the stripe locked
  // and the positions (indexes into keys) that fall into it.
  template <typename Fn>
  void ForEachStripe(absl::Span<const uint64_t> keys, Fn fn);

  const proto::TableConfig config_;
  const float learning_rate_;
  Stripe stripes_[kNumStripes];
};

}  // namespace granary

#endif  // GRANARY_PS_MEMORY_TABLE_H_
