#include "ps/memory_table.h"

#include <cstring>

#include "ps/initializer.h"

namespace granary {

MemoryTable::MemoryTable(const proto::TableConfig& config)
    : config_(config), learning_rate_(config.optimizer().sgd().learning_rate()) {}

float* MemoryTable::FindOrCreateRow(Stripe& stripe, uint64_t key) {
  const size_t dim = config_.dim();
  auto [it, inserted] =
      stripe.row_of_key.try_emplace(key, static_cast<uint32_t>(stripe.values.size() / dim));
  if (inserted) {
    stripe.values.resize(stripe.values.size() + dim);
    InitializeRow(config_.initializer(), key, dim, &stripe.values[it->second * dim]);
  }
  return &stripe.values[static_cast<size_t>(it->second) * dim];
}

template <typename Fn>
void MemoryTable::ForEachStripe(absl::Span<const uint64_t> keys, Fn fn) {
  // Counting sort of positions by stripe; the buffers are reused across calls of a thread.
  thread_local std::vector<uint32_t> order;
  size_t begin_of[kNumStripes + 1] = {};
  for (uint64_t key : keys) ++begin_of[(key & (kNumStripes - 1)) + 1];
  for (int s = 0; s < kNumStripes; ++s) begin_of[s + 1] += begin_of[s];
  order.resize(keys.size());
  size_t next[kNumStripes];
  std::memcpy(next, begin_of, sizeof(next));
  for (size_t i = 0; i < keys.size(); ++i) {
    order[next[keys[i] & (kNumStripes - 1)]++] = static_cast<uint32_t>(i);
  }
  for (int s = 0; s < kNumStripes; ++s) {
    if (begin_of[s] == begin_of[s + 1]) continue;
    Stripe& stripe = stripes_[s];
    std::lock_guard<std::mutex> lock(stripe.mutex);
    fn(stripe,
       absl::Span<const uint32_t>(order.data() + begin_of[s], begin_of[s + 1] - begin_of[s]));
  }
}

void MemoryTable::Pull(absl::Span<const uint64_t> keys, float* values) {
  const size_t dim = config_.dim();
  ForEachStripe(keys, [&](Stripe& stripe, absl::Span<const uint32_t> positions) {
    for (uint32_t i : positions) {
      std::memcpy(values + i * dim, FindOrCreateRow(stripe, keys[i]), dim * sizeof(float));
    }
  });
}

void MemoryTable::Push(absl::Span<const uint64_t> keys, const float* grads) {
  const size_t dim = config_.dim();
  const float lr = learning_rate_;
  ForEachStripe(keys, [&](Stripe& stripe, absl::Span<const uint32_t> positions) {
    for (uint32_t i : positions) {
      float* row = FindOrCreateRow(stripe, keys[i]);
      const float* grad = grads + i * dim;
      for (size_t d = 0; d < dim; ++d) row[d] -= lr * grad[d];
    }
  });
}

size_t MemoryTable::size() const {
  size_t rows = 0;
  for (const Stripe& stripe : stripes_) {
    std::lock_guard<std::mutex> lock(stripe.mutex);
    rows += stripe.row_of_key.size();
  }
  return rows;
}

}  // namespace granary
