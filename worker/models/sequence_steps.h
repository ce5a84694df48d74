// How the sequence models (DUPN, MIND) lay a batch's behaviour sequence out for their layers:
// one length per sample, and each step field sample-major, padded to the batch's longest
// sequence.
#ifndef GRANARY_WORKER_MODELS_SEQUENCE_STEPS_H_
#define GRANARY_WORKER_MODELS_SEQUENCE_STEPS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "worker/batch.h"

namespace granary {

// Writes the length of each of the n samples of `sequence` into *lengths and returns the number
// of steps to lay out: the longest length, at least 1, since the layers read at least one
// (padding) step.
inline int SequenceLengths(const SequenceColumn& sequence, int n, std::vector<int32_t>* lengths) {
  lengths->resize(n);
  int longest = 0;
  for (int b = 0; b < n; ++b) {
    (*lengths)[b] = static_cast<int32_t>(sequence.Length(b));
    longest = std::max(longest, (*lengths)[b]);
  }
  return std::max(1, longest);
}

// Lays a step field of `sequence` (one entry per step of the batch) out sample-major in *out,
// [B * steps]: sample b's step t at b * steps + t, through `convert`, and `padding` past the
// sample's length.
template <typename From, typename To, typename Convert>
void PadSteps(const SequenceColumn& sequence, const std::vector<int32_t>& lengths, int steps,
              const std::vector<From>& step_values, To padding, Convert convert,
              std::vector<To>* out) {
  out->assign(lengths.size() * static_cast<size_t>(steps), padding);
  for (size_t b = 0; b < lengths.size(); ++b) {
    for (int t = 0; t < lengths[b]; ++t) {
      (*out)[b * steps + t] = convert(step_values[sequence.offsets[b] + t]);
    }
  }
}

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_SEQUENCE_STEPS_H_
