#include "worker/nn/l2_normalize.h"

#include "glog/logging.h"

namespace granary {
namespace nn {

const Matrix& L2Normalize::Forward(const Matrix& input) {
  norms_.resize(input.rows(), 1);
  norms_.col(0) = input.rowwise().norm().cwiseMax(kMinNorm);
  output_.resize(input.rows(), input.cols());
  output_ = input.array().colwise() / norms_.col(0).array();
  return output_;
}

const Matrix& L2Normalize::Backward(const Matrix& d_output) {
  DCHECK_EQ(d_output.rows(), output_.rows());
  DCHECK_EQ(d_output.cols(), output_.cols());
  d_input_.resize(d_output.rows(), d_output.cols());
  for (Eigen::Index b = 0; b < d_output.rows(); ++b) {
    const float norm = norms_(b, 0);
    if (norm <= kMinNorm) {
      // Below the floor the layer is linear: output = input / kMinNorm.
      d_input_.row(b) = d_output.row(b) / norm;
      continue;
    }
    const float projection = output_.row(b).dot(d_output.row(b));
    d_input_.row(b) = (d_output.row(b) - projection * output_.row(b)) / norm;
  }
  return d_input_;
}

}  // namespace nn
}  // namespace granary
