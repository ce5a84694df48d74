#include "worker/nn/cross_network.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace nn {

CrossNetwork::CrossNetwork(ParameterSet* params, absl::string_view name, int dim, int num_layers)
    : dim_(dim), outputs_(num_layers), crosses_(num_layers) {
  for (int l = 0; l < num_layers; ++l) {
    weights_.push_back(params->Add(absl::StrCat(name, ".", l, "/weight"), dim, dim,
                                   ParameterSet::GlorotLimit(dim, dim)));
    biases_.push_back(params->Add(absl::StrCat(name, ".", l, "/bias"), 1, dim, 0.0f));
  }
}

const Matrix& CrossNetwork::Forward(const Matrix& input) {
  DCHECK_EQ(input.cols(), dim_);
  input_ = &input;
  const Matrix* x = &input;
  for (int l = 0; l < num_layers(); ++l) {
    crosses_[l].resize(input.rows(), dim_);
    crosses_[l].noalias() = *x * weights_[l]->value;
    crosses_[l].rowwise() += biases_[l]->value.row(0);
    outputs_[l] = input.cwiseProduct(crosses_[l]) + *x;
    x = &outputs_[l];
  }
  return *x;
}

const Matrix& CrossNetwork::Backward(const Matrix& d_output) {
  DCHECK(input_ != nullptr) << "Backward before Forward";
  DCHECK_EQ(d_output.rows(), input_->rows());
  DCHECK_EQ(d_output.cols(), dim_);
  // x_0 feeds every layer twice over (as x_0 and through x_l), so its gradient gathers the
  // direct terms d_{l+1} * cross_l of all layers on top of the chain through the x_l.
  d_x_ = d_output;
  d_input_direct_.setZero(d_output.rows(), dim_);
  for (int l = num_layers() - 1; l >= 0; --l) {
    const Matrix& x = l == 0 ? *input_ : outputs_[l - 1];
    d_cross_ = d_x_.cwiseProduct(*input_);
    d_input_direct_ += d_x_.cwiseProduct(crosses_[l]);
    weights_[l]->grad.noalias() += x.transpose() * d_cross_;
    biases_[l]->grad.row(0) += d_cross_.colwise().sum();
    d_x_.noalias() += d_cross_ * weights_[l]->value.transpose();
  }
  d_x_ += d_input_direct_;
  return d_x_;
}

}  // namespace nn
}  // namespace granary
