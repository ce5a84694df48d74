#include "worker/error_feedback.h"

#include <cmath>

#include "common/wire_codec.h"

namespace granary {

ErrorFeedback::ErrorFeedback(proto::ValueEncoding encoding, size_t dim, size_t max_keys)
    : encoding_(encoding), dim_(dim), max_keys_(max_keys) {}

std::vector<uint8_t> ErrorFeedback::Encode(absl::Span<const uint64_t> keys,
                                           absl::Span<const float> grads) {
  std::vector<float> corrected(grads.begin(), grads.end());
  // Row of each key's residual in residuals_, or kNone if it is not held.
  constexpr size_t kNone = ~size_t{0};
  std::vector<size_t> rows(keys.size(), kNone);
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = row_of_key_.find(keys[i]);
    if (it == row_of_key_.end()) {
      if (row_of_key_.size() >= max_keys_) {
        ++dropped_keys_;
        continue;
      }
      it = row_of_key_.emplace(keys[i], row_of_key_.size()).first;
      residuals_.resize(residuals_.size() + dim_, 0.0f);
    }
    rows[i] = it->second;
    const float* residual = &residuals_[it->second * dim_];
    float* row = &corrected[i * dim_];
    for (size_t d = 0; d < dim_; ++d) row[d] += residual[d];
  }
  std::vector<uint8_t> encoded = EncodeValues(encoding_, corrected, dim_);
  std::vector<float> decoded(corrected.size());
  // Cannot fail: the frame was just encoded with this encoding and shape.
  DecodeValues(encoding_, encoded, keys.size(), dim_, decoded.data()).IgnoreError();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (rows[i] == kNone) continue;
    float* residual = &residuals_[rows[i] * dim_];
    for (size_t d = 0; d < dim_; ++d) {
      const float error = corrected[i * dim_ + d] - decoded[i * dim_ + d];
      // A non-finite gradient is refused by the server; it must not poison later pushes.
      residual[d] = std::isfinite(error) ? error : 0.0f;
    }
  }
  return encoded;
}

size_t ErrorFeedback::keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return row_of_key_.size();
}

uint64_t ErrorFeedback::dropped_keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_keys_;
}

}  // namespace granary
