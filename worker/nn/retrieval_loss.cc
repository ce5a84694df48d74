#include "worker/nn/retrieval_loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "glog/logging.h"

namespace granary {
namespace nn {

LossValue InBatchSoftmax::Compute(const Matrix& users, const Matrix& items,
                                  const InBatchSoftmaxOptions& options,
                                  const SampleWeighting& weighting, Matrix* d_users,
                                  Matrix* d_items) {
  const Eigen::Index batch = users.rows();
  DCHECK_EQ(items.rows(), batch);
  DCHECK_EQ(items.cols(), users.cols());
  DCHECK_GT(options.temperature, 0.0f);
  const bool corrected = !options.log_sampling_probabilities.empty();
  const bool masked = !options.item_keys.empty();
  DCHECK(!corrected ||
         static_cast<Eigen::Index>(options.log_sampling_probabilities.size()) == batch);
  DCHECK(!masked || static_cast<Eigen::Index>(options.item_keys.size()) == batch);
  const float inverse_temperature = 1.0f / options.temperature;

  logits_.resize(batch, batch);
  logits_.noalias() = users * items.transpose();
  logits_ *= inverse_temperature;
  if (corrected) {
    for (Eigen::Index j = 0; j < batch; ++j)
      logits_.col(j).array() -= options.log_sampling_probabilities[j];
  }
  if (masked) {
    for (Eigen::Index i = 0; i < batch; ++i) {
      for (Eigen::Index j = 0; j < batch; ++j) {
        if (j != i && options.item_keys[j] == options.item_keys[i]) {
          logits_(i, j) = -std::numeric_limits<float>::infinity();
        }
      }
    }
  }

  LossValue loss;
  loss.count = weighting.CountLabelled(batch);
  const double scale = loss.count > 0 ? 1.0 / static_cast<double>(loss.count) : 0.0;
  d_logits_.resize(batch, batch);
  for (Eigen::Index i = 0; i < batch; ++i) {
    auto d_row = d_logits_.row(i);
    if (!weighting.HasLabel(i)) {
      d_row.setZero();
      continue;
    }
    const auto row = logits_.row(i);
    const float max_logit = row.maxCoeff();  // finite: the diagonal is never left out
    d_row = (row.array() - max_logit).exp().matrix();
    const double sum_exp = d_row.cast<double>().sum();
    const double weight = weighting.WeightOf(i);
    loss.total += weight * (max_logit + std::log(sum_exp) - row(i));
    d_row *= static_cast<float>(weight * scale / sum_exp);
    d_row(i) -= static_cast<float>(weight * scale);
  }
  // The correction and the mask are constants, so only the similarity carries gradient.
  d_users->resize(batch, users.cols());
  d_users->noalias() = d_logits_ * items;
  *d_users *= inverse_temperature;
  d_items->resize(batch, items.cols());
  d_items->noalias() = d_logits_.transpose() * users;
  *d_items *= inverse_temperature;
  return loss;
}

LossValue SampledPairLogistic(const Matrix& users, const Matrix& items,
                              absl::Span<const ScoredPair> pairs, float temperature,
                              Matrix* d_users, Matrix* d_items) {
  DCHECK_EQ(users.cols(), items.cols());
  DCHECK_GT(temperature, 0.0f);
  d_users->setZero(users.rows(), users.cols());
  d_items->setZero(items.rows(), items.cols());
  LossValue loss;
  loss.count = static_cast<int64_t>(pairs.size());
  if (pairs.empty()) return loss;
  const double scale = 1.0 / static_cast<double>(pairs.size());
  const double inverse_temperature = 1.0 / temperature;
  for (const ScoredPair& pair : pairs) {
    DCHECK(pair.user_row >= 0 && pair.user_row < users.rows()) << pair.user_row;
    DCHECK(pair.item_row >= 0 && pair.item_row < items.rows()) << pair.item_row;
    const auto user = users.row(pair.user_row);
    const auto item = items.row(pair.item_row);
    const double logit = user.dot(item) * inverse_temperature;
    loss.total += Softplus(logit) - logit * pair.label;
    const float d_logit =
        static_cast<float>((Sigmoid(logit) - pair.label) * scale * inverse_temperature);
    d_users->row(pair.user_row) += d_logit * item;
    d_items->row(pair.item_row) += d_logit * user;
  }
  return loss;
}

LossValue SquaredDistanceToTarget(const Matrix& vectors, const Matrix& targets,
                                  const SampleWeighting& weighting, Matrix* d_vectors) {
  const Eigen::Index batch = vectors.rows();
  DCHECK_EQ(targets.rows(), batch);
  DCHECK_EQ(targets.cols(), vectors.cols());
  LossValue loss;
  loss.count = weighting.CountLabelled(batch);
  const double scale = loss.count > 0 ? 1.0 / static_cast<double>(loss.count) : 0.0;
  d_vectors->resize(batch, vectors.cols());
  for (Eigen::Index b = 0; b < batch; ++b) {
    if (!weighting.HasLabel(b)) {
      d_vectors->row(b).setZero();
      continue;
    }
    const double weight = weighting.WeightOf(b);
    d_vectors->row(b) = vectors.row(b) - targets.row(b);
    loss.total += weight * d_vectors->row(b).cast<double>().squaredNorm();
    d_vectors->row(b) *= static_cast<float>(2.0 * weight * scale);
  }
  return loss;
}

LossValue CategoryAlignment::Compute(const Matrix& items, absl::Span<const int32_t> categories,
                                     Matrix* d_items) {
  const Eigen::Index batch = items.rows();
  const Eigen::Index dim = items.cols();
  DCHECK_EQ(static_cast<Eigen::Index>(categories.size()), batch);
  d_items->setZero(batch, dim);

  // Group the rows by category; a batch has few categories, so a linear search is cheapest.
  size_t num_groups = 0;
  for (Eigen::Index b = 0; b < batch; ++b) {
    if (categories[b] == kNoCategory) continue;
    size_t g = 0;
    while (g < num_groups && groups_[g].category != categories[b]) ++g;
    if (g == num_groups) {
      if (groups_.size() == num_groups) groups_.emplace_back();
      groups_[g].category = categories[b];
      groups_[g].rows.clear();
      ++num_groups;
    }
    groups_[g].rows.push_back(static_cast<int32_t>(b));
  }
  // Drop the groups with no covariance, and find the major category among the rest.
  size_t kept = 0;
  for (size_t g = 0; g < num_groups; ++g) {
    if (groups_[g].rows.size() >= 2) std::swap(groups_[kept++], groups_[g]);
  }
  LossValue loss;
  if (kept < 2) return loss;
  size_t major = 0;
  for (size_t g = 1; g < kept; ++g) {
    const size_t n = groups_[g].rows.size(), best = groups_[major].rows.size();
    if (n > best || (n == best && groups_[g].category < groups_[major].category)) major = g;
  }

  for (size_t g = 0; g < kept; ++g) {
    Group& group = groups_[g];
    const Eigen::Index n = static_cast<Eigen::Index>(group.rows.size());
    group.centered.resize(n, dim);
    for (Eigen::Index r = 0; r < n; ++r) group.centered.row(r) = items.row(group.rows[r]);
    group.centered.rowwise() -= group.centered.colwise().mean();
    group.covariance.resize(dim, dim);
    group.covariance.noalias() = group.centered.transpose() * group.centered;
    group.covariance /= static_cast<float>(n - 1);
  }
  // With D_c = C(major) - C(c): dL/dC(c) = -2 D_c and dL/dC(major) = 2 sum_c D_c. For
  // C = X^T X / (n - 1) over centered rows X and a symmetric G = dL/dC, dL/dX = 2 X G / (n - 1);
  // the centering passes it through unchanged, as the rows of X G sum to zero.
  const Matrix& major_covariance = groups_[major].covariance;
  d_covariance_.setZero(dim, dim);
  for (size_t g = 0; g < kept; ++g) {
    if (g == major) continue;
    Group& group = groups_[g];
    group.covariance = major_covariance - group.covariance;  // now D_c
    loss.total += group.covariance.cast<double>().squaredNorm();
    d_covariance_ += group.covariance;
  }
  loss.count = 1;
  d_covariance_ *= 2.0f;
  for (size_t g = 0; g < kept; ++g) {
    Group& group = groups_[g];
    const Eigen::Index n = group.centered.rows();
    const Matrix& gradient = g == major ? d_covariance_ : group.covariance;
    const float factor = (g == major ? 2.0f : -4.0f) / static_cast<float>(n - 1);
    d_centered_.resize(n, dim);
    d_centered_.noalias() = group.centered * gradient;
    d_centered_ *= factor;
    for (Eigen::Index r = 0; r < n; ++r) d_items->row(group.rows[r]) += d_centered_.row(r);
  }
  return loss;
}

}  // namespace nn
}  // namespace granary
