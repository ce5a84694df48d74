// What the Model::ForwardOneUser overrides share: checks that a batch is one user's request
// (every sample repeats sample 0's user-side arrays), and sample 0's rows of a list of slots as
// a batch of one, so that a user-only layer runs once instead of once per candidate.
//
// Thread-compatible: pure functions of their arguments.
#ifndef GRANARY_WORKER_MODELS_ONE_USER_BATCH_H_
#define GRANARY_WORKER_MODELS_ONE_USER_BATCH_H_

#include <cstddef>
#include <vector>

#include "absl/types/span.h"
#include "worker/models/embedded_fields.h"

namespace granary {

// True if `values` is copies of its first `block` values back to back (a per-sample array of
// `block` entries per sample whose every sample equals sample 0). REQUIRES: block > 0 and
// values.size() a multiple of block. Compares with ==, so a NaN never repeats.
template <typename T>
bool RepeatsFirstBlock(absl::Span<const T> values, size_t block) {
  for (size_t i = block; i < values.size(); ++i) {
    if (!(values[i] == values[i % block])) return false;
  }
  return true;
}

// True if every sample of every slot has the same rows, in the same order, as sample 0.
bool SameRowsForEverySample(const std::vector<SlotRows>& slots);

// Writes into *first (resized to slots.size(), its memory reused) sample 0's rows of every slot
// as a batch of one sample.
void FirstSampleRows(const std::vector<SlotRows>& slots, std::vector<SlotRows>* first);

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_ONE_USER_BATCH_H_
