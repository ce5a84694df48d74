// ErrorFeedback: what a lossy push encoding (TableConfig.wire.push_values VALUES_FP16 or
// VALUES_INT8) dropped of a table's gradients, carried into the next push of the same key.
//
// Encode adds each key's residual to its gradient row, encodes the sum (common/wire_codec.h)
// and keeps sum - decoded(sum) as the key's new residual. The server therefore receives, summed
// over a key's pushes, the sum of its true gradients up to the one residual still held: error
// feedback (Seide et al., "1-bit SGD", Interspeech 2014), so that quantization delays part of a
// gradient instead of losing it.
//
// Bounded: residuals are kept for at most max_keys keys (rows of dim floats each). Past that, a
// key not yet held sends its gradient with no residual carried and its rounding error is dropped
// (counted in dropped_keys()); keys already held keep theirs. A residual is forgotten only with
// the object (a worker's lifetime): a push that fails after Encode loses the residual's share
// along with the push itself.
//
// Thread-safe: Encode takes one lock per call (per request, never per row).
#ifndef GRANARY_WORKER_ERROR_FEEDBACK_H_
#define GRANARY_WORKER_ERROR_FEEDBACK_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "common/proto/config.pb.h"

namespace granary {

class ErrorFeedback {
 public:
  // Residuals held per table at most, by default: 1 M keys, 64 MiB of floats at dim 16.
  static constexpr size_t kDefaultMaxKeys = size_t{1} << 20;

  // REQUIRES: dim >= 1, `encoding` a known one.
  ErrorFeedback(proto::ValueEncoding encoding, size_t dim, size_t max_keys = kDefaultMaxKeys);
  ErrorFeedback(const ErrorFeedback&) = delete;
  ErrorFeedback& operator=(const ErrorFeedback&) = delete;

  // The rows `grads` (keys.size() x dim floats, row i for keys[i]) plus each key's residual,
  // encoded: keys.size() x EncodedRowBytes(encoding, dim) bytes. REQUIRES: keys unique.
  std::vector<uint8_t> Encode(absl::Span<const uint64_t> keys, absl::Span<const float> grads);

  // Keys whose residual is held.
  size_t keys() const;
  // Keys whose rounding error was dropped because max_keys residuals were held.
  uint64_t dropped_keys() const;

 private:
  const proto::ValueEncoding encoding_;
  const size_t dim_;
  const size_t max_keys_;
  mutable std::mutex mutex_;
  absl::flat_hash_map<uint64_t, size_t> row_of_key_;  // guarded by mutex_; rows of residuals_
  std::vector<float> residuals_;                      // guarded by mutex_; rows of dim floats
  uint64_t dropped_keys_ = 0;                         // guarded by mutex_
};

}  // namespace granary

#endif  // GRANARY_WORKER_ERROR_FEEDBACK_H_
