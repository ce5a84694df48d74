#include "worker/nn/dense.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace nn {

Dense::Dense(ParameterSet* params, absl::string_view name, int input_dim, int output_dim)
    : input_dim_(input_dim),
      output_dim_(output_dim),
      weight_(params->Add(absl::StrCat(name, "/weight"), input_dim, output_dim,
                          ParameterSet::GlorotLimit(input_dim, output_dim))),
      bias_(params->Add(absl::StrCat(name, "/bias"), 1, output_dim, 0.0f)) {}

const Matrix& Dense::Forward(const Matrix& input) {
  DCHECK_EQ(input.cols(), input_dim_);
  input_ = &input;
  output_.resize(input.rows(), output_dim_);
  output_.noalias() = input * weight_->value;
  output_.rowwise() += bias_->value.row(0);
  return output_;
}

const Matrix& Dense::Backward(const Matrix& d_output) {
  DCHECK(input_ != nullptr) << "Backward before Forward";
  DCHECK_EQ(d_output.rows(), input_->rows());
  DCHECK_EQ(d_output.cols(), output_dim_);
  weight_->grad.noalias() += input_->transpose() * d_output;
  bias_->grad.row(0) += d_output.colwise().sum();
  d_input_.resize(d_output.rows(), input_dim_);
  d_input_.noalias() = d_output * weight_->value.transpose();
  return d_input_;
}

}  // namespace nn
}  // namespace granary
