#include "worker/nn/interest_routing.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace nn {
namespace {

// Below this norm squash(z) ~ z |z| and its Jacobian ~ 0: treated as exactly 0, which avoids
// dividing by the norm.
constexpr float kSquashMinNorm = 1e-12f;

// splitmix64's finalizer: a well-mixed 64-bit hash of x.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

InterestRouting::InterestRouting(ParameterSet* params, absl::string_view name, int input_dim,
                                 int output_dim, const InterestRoutingOptions& options)
    : input_dim_(input_dim),
      output_dim_(output_dim),
      options_(options),
      bilinear_(params->Add(absl::StrCat(name, "/bilinear"), input_dim, output_dim,
                            ParameterSet::GlorotLimit(input_dim, output_dim))) {
  CHECK_GE(options.num_interests, 1);
  CHECK_GE(options.num_iterations, 1);
  CHECK_GE(options.initial_logit_limit, 0.0f);
}

float InterestRouting::InitialLogit(int step, int interest) const {
  const uint64_t hash = Mix((static_cast<uint64_t>(step) << 32) | static_cast<uint32_t>(interest));
  // The top 24 bits as a uniform in [0, 1), exact in float.
  const float uniform = static_cast<float>(hash >> 40) / static_cast<float>(1 << 24);
  return (2.0f * uniform - 1.0f) * options_.initial_logit_limit;
}

const Matrix& InterestRouting::Forward(const Matrix& behaviours,
                                       absl::Span<const int32_t> lengths) {
  const int batch = static_cast<int>(lengths.size());
  DCHECK_GT(batch, 0);
  DCHECK_EQ(behaviours.rows() % batch, 0);
  DCHECK_EQ(behaviours.cols(), input_dim_);
  const int steps = static_cast<int>(behaviours.rows() / batch);
  const int interests = options_.num_interests;
  behaviours_ = &behaviours;
  lengths_.assign(lengths.begin(), lengths.end());
  counts_.resize(batch);
  const int active_steps = LongestLength(lengths_, steps);
  const Eigen::Index active_rows = static_cast<Eigen::Index>(active_steps) * batch;

  projected_.resize(behaviours.rows(), output_dim_);
  projected_.topRows(active_rows).noalias() = behaviours.topRows(active_rows) * bilinear_->value;
  logits_.setZero(behaviours.rows(), interests);
  weights_.setZero(behaviours.rows(), interests);
  summed_.setZero(batch, static_cast<Eigen::Index>(interests) * output_dim_);
  interests_.setZero(batch, static_cast<Eigen::Index>(interests) * output_dim_);

  for (int b = 0; b < batch; ++b) {
    const int length = lengths_[b];
    int count = interests;
    if (options_.adaptive_count) {
      const int by_length = length > 0 ? static_cast<int>(std::floor(std::log2(length))) : 0;
      count = std::max(1, std::min(interests, by_length));
    }
    counts_[b] = count;
    if (length == 0) continue;
    for (int t = 0; t < length; ++t) {
      for (int j = 0; j < count; ++j) logits_(t * batch + b, j) = InitialLogit(t, j);
    }
    for (int iteration = 0; iteration < options_.num_iterations; ++iteration) {
      for (int t = 0; t < length; ++t) {
        const Eigen::Index row = static_cast<Eigen::Index>(t) * batch + b;
        auto logits = logits_.row(row).head(count);
        auto weights = weights_.row(row).head(count);
        weights = (logits.array() - logits.maxCoeff()).exp();
        weights /= weights.sum();
      }
      for (int j = 0; j < count; ++j) {
        auto summed =
            summed_.row(b).segment(static_cast<Eigen::Index>(j) * output_dim_, output_dim_);
        summed.setZero();
        for (int t = 0; t < length; ++t) {
          const Eigen::Index row = static_cast<Eigen::Index>(t) * batch + b;
          summed += weights_(row, j) * projected_.row(row);
        }
        const float squared_norm = summed.squaredNorm();
        const float norm = std::sqrt(squared_norm);
        auto interest =
            interests_.row(b).segment(static_cast<Eigen::Index>(j) * output_dim_, output_dim_);
        if (norm < kSquashMinNorm) {
          interest.setZero();
        } else {
          interest = summed * (norm / (1.0f + squared_norm));
        }
        if (iteration + 1 < options_.num_iterations) {
          for (int t = 0; t < length; ++t) {
            const Eigen::Index row = static_cast<Eigen::Index>(t) * batch + b;
            logits_(row, j) += interest.dot(projected_.row(row));
          }
        }
      }
    }
  }
  return interests_;
}

const Matrix& InterestRouting::Backward(const Matrix& d_interests) {
  DCHECK(behaviours_ != nullptr) << "Backward before Forward";
  const int batch = static_cast<int>(lengths_.size());
  DCHECK_EQ(d_interests.rows(), batch);
  DCHECK_EQ(d_interests.cols(), interests_.cols());
  const Matrix& behaviours = *behaviours_;

  // Through u = squash(z) = s(n) z with n = |z|, s(n) = n / (1 + n^2):
  // d_z = s d_u + z (s'(n) / n) (z . d_u), s'(n) = (1 - n^2) / (1 + n^2)^2.
  d_summed_.setZero(batch, interests_.cols());
  for (int b = 0; b < batch; ++b) {
    if (lengths_[b] == 0) continue;
    for (int j = 0; j < counts_[b]; ++j) {
      const Eigen::Index first = static_cast<Eigen::Index>(j) * output_dim_;
      const auto summed = summed_.row(b).segment(first, output_dim_);
      const auto d_interest = d_interests.row(b).segment(first, output_dim_);
      const float squared_norm = summed.squaredNorm();
      const float norm = std::sqrt(squared_norm);
      if (norm < kSquashMinNorm) continue;
      const float denominator = 1.0f + squared_norm;
      const float scale = norm / denominator;
      const float slope = (1.0f - squared_norm) / (denominator * denominator) / norm;
      d_summed_.row(b).segment(first, output_dim_) =
          scale * d_interest + (slope * summed.dot(d_interest)) * summed;
    }
  }
  // Through z_j = sum_i w_ij p_i with w constant.
  d_projected_.setZero(behaviours.rows(), output_dim_);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < lengths_[b]; ++t) {
      const Eigen::Index row = static_cast<Eigen::Index>(t) * batch + b;
      for (int j = 0; j < counts_[b]; ++j) {
        d_projected_.row(row) +=
            weights_(row, j) *
            d_summed_.row(b).segment(static_cast<Eigen::Index>(j) * output_dim_, output_dim_);
      }
    }
  }
  bilinear_->grad.noalias() += behaviours.transpose() * d_projected_;
  d_behaviours_.resize(behaviours.rows(), input_dim_);
  d_behaviours_.noalias() = d_projected_ * bilinear_->value.transpose();
  return d_behaviours_;
}

}  // namespace nn
}  // namespace granary
