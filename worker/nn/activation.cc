#include "worker/nn/activation.h"

#include "glog/logging.h"

namespace granary {
namespace nn {

const Matrix& Activation::Forward(const Matrix& input) {
  output_.resize(input.rows(), input.cols());
  switch (kind_) {
    case ActivationKind::kRelu:
      output_ = input.array().max(0.0f);
      break;
    case ActivationKind::kSigmoid:
      output_ = input.array().logistic();
      break;
    case ActivationKind::kTanh:
      output_ = input.array().tanh();
      break;
  }
  return output_;
}

const Matrix& Activation::Backward(const Matrix& d_output) {
  DCHECK_EQ(d_output.rows(), output_.rows());
  DCHECK_EQ(d_output.cols(), output_.cols());
  d_input_.resize(d_output.rows(), d_output.cols());
  switch (kind_) {
    case ActivationKind::kRelu:
      d_input_ = (output_.array() > 0.0f).select(d_output, 0.0f);
      break;
    case ActivationKind::kSigmoid:
      d_input_ = d_output.array() * output_.array() * (1.0f - output_.array());
      break;
    case ActivationKind::kTanh:
      d_input_ = d_output.array() * (1.0f - output_.array().square());
      break;
  }
  return d_input_;
}

}  // namespace nn
}  // namespace granary
