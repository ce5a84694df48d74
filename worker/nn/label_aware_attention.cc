#include "worker/nn/label_aware_attention.h"

#include <cmath>
#include <limits>

#include "glog/logging.h"

namespace granary {
namespace nn {
namespace {

// sign(x) |x|^p and its derivative p |x|^(p - 1).
float SignedPower(float x, float p) { return std::copysign(std::pow(std::abs(x), p), x); }
float SignedPowerSlope(float x, float p) { return p * std::pow(std::abs(x), p - 1.0f); }

}  // namespace

LabelAwareAttention::LabelAwareAttention(int num_interests, int dim, float power)
    : num_interests_(num_interests), dim_(dim), power_(power) {
  CHECK_GE(num_interests, 1);
  CHECK_GE(dim, 1);
  CHECK_GE(power, 1.0f);
}

const Matrix& LabelAwareAttention::Forward(const Matrix& interests,
                                           absl::Span<const int32_t> counts, const Matrix& target) {
  const Eigen::Index batch = static_cast<Eigen::Index>(counts.size());
  DCHECK_EQ(interests.rows(), batch);
  DCHECK_EQ(interests.cols(), static_cast<Eigen::Index>(num_interests_) * dim_);
  DCHECK_EQ(target.rows(), batch);
  DCHECK_EQ(target.cols(), dim_);
  interests_ = &interests;
  target_ = &target;
  counts_.assign(counts.begin(), counts.end());
  agreements_.setZero(batch, num_interests_);
  weights_.setZero(batch, num_interests_);
  user_.setZero(batch, dim_);
  for (Eigen::Index b = 0; b < batch; ++b) {
    const int count = counts_[b];
    DCHECK(count >= 0 && count <= num_interests_) << count;
    if (count == 0) continue;
    float best = std::numeric_limits<float>::lowest();
    for (int k = 0; k < count; ++k) {
      agreements_(b, k) = interests.row(b).segment(k * dim_, dim_).dot(target.row(b));
      weights_(b, k) = SignedPower(agreements_(b, k), power_);
      best = std::max(best, weights_(b, k));
    }
    auto weights = weights_.row(b).head(count);
    weights = (weights.array() - best).exp();
    weights /= weights.sum();
    for (int k = 0; k < count; ++k) {
      user_.row(b) += weights_(b, k) * interests.row(b).segment(k * dim_, dim_);
    }
  }
  return user_;
}

void LabelAwareAttention::Backward(const Matrix& d_user) {
  DCHECK(interests_ != nullptr) << "Backward before Forward";
  const Matrix& interests = *interests_;
  const Matrix& target = *target_;
  const Eigen::Index batch = static_cast<Eigen::Index>(counts_.size());
  DCHECK_EQ(d_user.rows(), batch);
  DCHECK_EQ(d_user.cols(), dim_);
  d_interests_.setZero(batch, interests.cols());
  d_target_.setZero(batch, dim_);
  for (Eigen::Index b = 0; b < batch; ++b) {
    const int count = counts_[b];
    if (count == 0) continue;
    // Through user = sum_k a_k u_k: d_u_k = a_k d_user and d_a_k = u_k . d_user; then the
    // softmax, d_s_k = a_k (d_a_k - sum_j a_j d_a_j); then s_k = signed power of x_k.
    float expected = 0;
    for (int k = 0; k < count; ++k) {
      expected += weights_(b, k) * interests.row(b).segment(k * dim_, dim_).dot(d_user.row(b));
    }
    for (int k = 0; k < count; ++k) {
      const auto interest = interests.row(b).segment(k * dim_, dim_);
      const float d_weight = interest.dot(d_user.row(b));
      const float d_agreement =
          weights_(b, k) * (d_weight - expected) * SignedPowerSlope(agreements_(b, k), power_);
      d_interests_.row(b).segment(k * dim_, dim_) =
          weights_(b, k) * d_user.row(b) + d_agreement * target.row(b);
      d_target_.row(b) += d_agreement * interest;
    }
  }
}

}  // namespace nn
}  // namespace granary
