#include "worker/nn/mlp.h"

#include "absl/strings/str_cat.h"

namespace granary {
namespace nn {

Mlp::Mlp(ParameterSet* params, absl::string_view name, int input_dim,
         absl::Span<const uint32_t> widths, float dropout_rate)
    : input_dim_(input_dim), output_dim_(input_dim) {
  for (size_t i = 0; i < widths.size(); ++i) {
    const int width = static_cast<int>(widths[i]);
    layers_.push_back(
        std::make_unique<Dense>(params, absl::StrCat(name, ".", i), output_dim_, width));
    activations_.push_back(std::make_unique<Activation>(ActivationKind::kRelu));
    if (dropout_rate > 0.0f) {
      dropouts_.push_back(std::make_unique<Dropout>(
          &params->forward_mode(), absl::StrCat(name, ".", i, ".dropout"), dropout_rate));
    }
    output_dim_ = width;
  }
}

const Matrix& Mlp::Forward(const Matrix& input) {
  const Matrix* x = &input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    x = &activations_[i]->Forward(layers_[i]->Forward(*x));
    if (!dropouts_.empty()) x = &dropouts_[i]->Forward(*x);
  }
  return *x;
}

const Matrix& Mlp::Backward(const Matrix& d_output) {
  const Matrix* d = &d_output;
  for (size_t i = layers_.size(); i-- > 0;) {
    if (!dropouts_.empty()) d = &dropouts_[i]->Backward(*d);
    d = &layers_[i]->Backward(activations_[i]->Backward(*d));
  }
  return *d;
}

}  // namespace nn
}  // namespace granary
