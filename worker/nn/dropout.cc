#include "worker/nn/dropout.h"

#include <string_view>

#include "common/feature_key.h"
#include "common/random.h"

namespace granary {
namespace nn {

Dropout::Dropout(const ForwardMode* mode, absl::string_view name, float rate)
    : mode_(*mode),
      name_seed_(FieldSeed(std::string_view(name.data(), name.size()))),
      rate_(rate),
      keep_scale_(1.0f / (1.0f - rate)) {}

const Matrix& Dropout::Forward(const Matrix& input) {
  masked_ = mode_.training && rate_ > 0.0f;
  if (!masked_) return input;
  // One SplitMix64 stream per (seed, step, layer), drawn in element order: the mask depends on
  // nothing else, and costs one 64-bit mix per element.
  uint64_t state = mode_.seed ^ name_seed_;
  state = SplitMix64(&state) + static_cast<uint64_t>(mode_.step);
  state = SplitMix64(&state);
  mask_.resize(input.rows(), input.cols());
  float* mask = mask_.data();
  for (Eigen::Index i = 0; i < mask_.size(); ++i) {
    mask[i] = UnitDouble(SplitMix64(&state)) < rate_ ? 0.0f : keep_scale_;
  }
  output_ = input.cwiseProduct(mask_);
  return output_;
}

const Matrix& Dropout::Backward(const Matrix& d_output) {
  if (!masked_) return d_output;
  d_input_ = d_output.cwiseProduct(mask_);
  return d_input_;
}

}  // namespace nn
}  // namespace granary
