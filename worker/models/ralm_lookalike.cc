#include "worker/models/ralm_lookalike.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace {

using nn::Matrix;

// The norm floor of a cosine, as L2Normalize's: a zero vector has cosine 0 with anything.
constexpr float kMinNorm = 1e-6f;

// Writes the softmax of scores[first, last) into weights[first, last).
void SegmentSoftmax(const Matrix& scores, int first, int last, Matrix* weights) {
  if (first == last) return;
  const auto segment = scores.middleRows(first, last - first);
  const float top = segment.maxCoeff();
  weights->middleRows(first, last - first) = (segment.array() - top).exp().matrix();
  weights->middleRows(first, last - first) /= weights->middleRows(first, last - first).sum();
}

// d_scores[first, last) of a softmax from the gradient of its weights: a_i (d a_i - sum_j a_j
// d a_j).
void SegmentSoftmaxBackward(const Matrix& weights, const Matrix& d_weights, int first, int last,
                            Matrix* d_scores) {
  if (first == last) return;
  const auto a = weights.middleRows(first, last - first).array();
  const auto d_a = d_weights.middleRows(first, last - first).array();
  d_scores->middleRows(first, last - first) = (a * (d_a - (a * d_a).sum())).matrix();
}

}  // namespace

LookalikeScorer::LookalikeScorer(nn::ParameterSet* params, absl::string_view name, int dim,
                                 const LookalikeOptions& options)
    : dim_(dim),
      global_weight_(params->Add(absl::StrCat(name, "/global_weight"), dim, options.attention_dim,
                                 nn::ParameterSet::GlorotLimit(dim, options.attention_dim))),
      global_bias_(params->Add(absl::StrCat(name, "/global_bias"), 1, options.attention_dim, 0)),
      global_score_(params->Add(absl::StrCat(name, "/global_score"), options.attention_dim, 1, 0)),
      local_weight_(params->Add(absl::StrCat(name, "/local_weight"), dim, dim, 0)),
      local_sharpness_(params->Add(absl::StrCat(name, "/local_sharpness"), 1, 1, 0)),
      size_weight_(params->Add(absl::StrCat(name, "/size_weight"), 1, 2, 0)),
      merge_weight_(params->Add(absl::StrCat(name, "/merge_weight"), 1, 3, 0)),
      merge_bias_(params->Add(absl::StrCat(name, "/merge_bias"), 1, 1, 0)) {
  CHECK_GE(dim, 1);
  CHECK_GE(options.attention_dim, 1);
  local_sharpness_->value.setConstant(options.initial_local_sharpness);
  merge_weight_->value.leftCols(2).setConstant(options.initial_merge_weight);
  merge_weight_->value(0, 2) = options.initial_mass_weight;
  size_weight_->value.setConstant(options.initial_size_weight);
}

const Matrix& LookalikeScorer::Forward(const Matrix& users, const Matrix& seeds,
                                       const Matrix& log_shares,
                                       absl::Span<const int32_t> offsets) {
  const int batch = static_cast<int>(users.rows());
  DCHECK_EQ(offsets.size(), static_cast<size_t>(batch) + 1);
  DCHECK_EQ(offsets.back(), seeds.rows());
  DCHECK_EQ(users.cols(), dim_);
  users_ = &users;
  seeds_ = &seeds;
  log_shares_ = &log_shares;
  offsets_.assign(offsets.begin(), offsets.end());

  // One GEMM each for the global hidden layer of every centroid and the local queries.
  global_hidden_.noalias() = seeds * global_weight_->value;
  global_hidden_.rowwise() += global_bias_->value.row(0);
  global_hidden_ = global_hidden_.array().tanh().matrix();
  global_scores_.noalias() = global_hidden_ * global_score_->value;
  global_scores_ += size_weight_->value(0, 0) * log_shares;
  user_queries_.noalias() = users * local_weight_->value.transpose();
  local_tanh_.resize(seeds.rows(), 1);
  global_weights_.resize(seeds.rows(), 1);
  local_weights_.resize(seeds.rows(), 1);
  pooled_.setZero(batch, 2 * dim_);
  merge_inputs_.setZero(batch, 3);
  logits_.resize(batch, 1);
  const float sharpness = local_sharpness_->value(0, 0);
  local_scores_.resize(seeds.rows(), 1);
  for (int b = 0; b < batch; ++b) {
    const int first = offsets[b];
    const int count = offsets[b + 1] - first;
    if (count > 0) {
      const auto centroids = seeds.middleRows(first, count);
      local_tanh_.middleRows(first, count) =
          (centroids * user_queries_.row(b).transpose()).array().tanh().matrix();
      local_scores_.middleRows(first, count) =
          sharpness * local_tanh_.middleRows(first, count) +
          size_weight_->value(0, 1) * log_shares.middleRows(first, count);
      SegmentSoftmax(global_scores_, first, first + count, &global_weights_);
      SegmentSoftmax(local_scores_, first, first + count, &local_weights_);
      const auto local = local_scores_.middleRows(first, count).array();
      const float top = local.maxCoeff();
      merge_inputs_(b, 2) = top + std::log((local - top).exp().sum());
      pooled_.row(b).head(dim_) = global_weights_.middleRows(first, count).transpose() * centroids;
      pooled_.row(b).tail(dim_) = local_weights_.middleRows(first, count).transpose() * centroids;
      const float user_norm = std::max(users.row(b).norm(), kMinNorm);
      for (int side = 0; side < 2; ++side) {
        const auto pooled = pooled_.row(b).segment(side * dim_, dim_);
        merge_inputs_(b, side) =
            users.row(b).dot(pooled) / (user_norm * std::max(pooled.norm(), kMinNorm));
      }
    }
    logits_(b, 0) =
        merge_inputs_.row(b).dot(merge_weight_->value.row(0)) + merge_bias_->value(0, 0);
  }
  return logits_;
}

void LookalikeScorer::Backward(const Matrix& d_logits) {
  const Matrix& users = *users_;
  const Matrix& seeds = *seeds_;
  const int batch = static_cast<int>(users.rows());
  d_users_.setZero(batch, dim_);
  d_seeds_.setZero(seeds.rows(), dim_);
  d_user_queries_.setZero(batch, dim_);
  d_global_scores_.setZero(seeds.rows(), 1);
  d_global_weights_.resize(seeds.rows(), 1);
  d_local_weights_.resize(seeds.rows(), 1);
  d_local_scores_.resize(seeds.rows(), 1);
  const float sharpness = local_sharpness_->value(0, 0);
  float d_sharpness = 0;
  float d_local_size_weight = 0;
  for (int b = 0; b < batch; ++b) {
    const float d_logit = d_logits(b, 0);
    merge_bias_->grad(0, 0) += d_logit;
    const int first = offsets_[b];
    const int count = offsets_[b + 1] - first;
    if (count == 0) continue;
    merge_weight_->grad.row(0) += d_logit * merge_inputs_.row(b);
    const auto centroids = seeds.middleRows(first, count);
    const float user_norm = std::max(users.row(b).norm(), kMinNorm);
    for (int side = 0; side < 2; ++side) {
      // cos(u, x) = u.x / (|u| |x|): d/du = x / (|u||x|) - cos u / |u|^2, and symmetrically.
      const auto pooled = pooled_.row(b).segment(side * dim_, dim_);
      const float pooled_norm = std::max(pooled.norm(), kMinNorm);
      const float cosine = merge_inputs_(b, side);
      const float d_cosine = d_logit * merge_weight_->value(0, side);
      d_users_.row(b) += d_cosine * (pooled / (user_norm * pooled_norm) -
                                     cosine * users.row(b) / (user_norm * user_norm));
      d_pooled_ = d_cosine * (users.row(b) / (user_norm * pooled_norm) -
                              cosine * pooled / (pooled_norm * pooled_norm));
      // pooled = sum_i a_i c_i: d c_i += a_i d_pooled, d a_i = c_i . d_pooled.
      const Matrix& weights = side == 0 ? global_weights_ : local_weights_;
      Matrix& d_weights = side == 0 ? d_global_weights_ : d_local_weights_;
      d_seeds_.middleRows(first, count).noalias() += weights.middleRows(first, count) * d_pooled_;
      d_weights.middleRows(first, count).noalias() = centroids * d_pooled_.transpose();
    }
    SegmentSoftmaxBackward(global_weights_, d_global_weights_, first, first + count,
                           &d_global_scores_);
    SegmentSoftmaxBackward(local_weights_, d_local_weights_, first, first + count,
                           &d_local_scores_);
    // The mass term log sum_i exp(f_i): d f_i += d mass * a'_i.
    d_local_scores_.middleRows(first, count) +=
        d_logit * merge_weight_->value(0, 2) * local_weights_.middleRows(first, count);
    // f_i = s_l tanh(c_i . q_b), q_b = u_b W_l^T.
    const auto tanh = local_tanh_.middleRows(first, count).array();
    const auto d_f = d_local_scores_.middleRows(first, count).array();
    d_sharpness += (d_f * tanh).sum();
    d_local_size_weight += (d_f * log_shares_->middleRows(first, count).array()).sum();
    d_products_ = (sharpness * d_f * (1 - tanh.square())).matrix();  // [count, 1]
    d_seeds_.middleRows(first, count).noalias() += d_products_ * user_queries_.row(b);
    d_user_queries_.row(b).noalias() += d_products_.transpose() * centroids;
  }
  local_sharpness_->grad(0, 0) += d_sharpness;
  size_weight_->grad(0, 0) += d_global_scores_.cwiseProduct(*log_shares_).sum();
  size_weight_->grad(0, 1) += d_local_size_weight;
  // q = u W_l^T: d u += d q W_l, d W_l += d q^T u.
  d_users_.noalias() += d_user_queries_ * local_weight_->value;
  local_weight_->grad.noalias() += d_user_queries_.transpose() * users;
  // e = tanh(C W_g + b_g) v_g.
  global_score_->grad.noalias() += global_hidden_.transpose() * d_global_scores_;
  d_hidden_ = ((d_global_scores_ * global_score_->value.transpose()).array() *
               (1 - global_hidden_.array().square()))
                  .matrix();
  global_weight_->grad.noalias() += seeds.transpose() * d_hidden_;
  global_bias_->grad.row(0) += d_hidden_.colwise().sum();
  d_seeds_.noalias() += d_hidden_ * global_weight_->value.transpose();
}

}  // namespace granary
