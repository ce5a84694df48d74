#include "worker/nn/loss.h"

#include <algorithm>
#include <cmath>

#include "glog/logging.h"

namespace granary {
namespace nn {
namespace {

void CheckWeighting(const SampleWeighting& weighting, Eigen::Index batch) {
  DCHECK(weighting.weights.empty() || static_cast<Eigen::Index>(weighting.weights.size()) == batch);
  DCHECK(weighting.has_label.empty() ||
         static_cast<Eigen::Index>(weighting.has_label.size()) == batch);
}

// One sample's loss and its derivative w.r.t. the sample's prediction.
struct LossAndSlope {
  double loss;
  double slope;
};

// The frame shared by the losses of one prediction per sample: skips unlabelled samples,
// applies weights and divides by the labelled count. `per_sample(prediction, target)`
// returns a LossAndSlope.
template <typename PerSample>
LossValue ScalarLoss(const Matrix& predictions, absl::Span<const float> targets,
                     const SampleWeighting& weighting, Matrix* d_predictions,
                     PerSample per_sample) {
  const Eigen::Index batch = predictions.rows();
  DCHECK_EQ(predictions.cols(), 1);
  DCHECK_EQ(static_cast<Eigen::Index>(targets.size()), batch);
  CheckWeighting(weighting, batch);
  LossValue loss;
  loss.count = weighting.CountLabelled(batch);
  d_predictions->resize(batch, 1);
  const double scale = loss.count > 0 ? 1.0 / static_cast<double>(loss.count) : 0.0;
  for (Eigen::Index i = 0; i < batch; ++i) {
    if (!weighting.HasLabel(i)) {
      (*d_predictions)(i, 0) = 0.0f;
      continue;
    }
    const LossAndSlope term = per_sample(predictions(i, 0), targets[i]);
    const double weight = weighting.WeightOf(i);
    loss.total += weight * term.loss;
    (*d_predictions)(i, 0) = static_cast<float>(weight * term.slope * scale);
  }
  return loss;
}

}  // namespace

double Softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

double Sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

LossValue SigmoidBinaryCrossEntropy(const Matrix& logits, absl::Span<const float> labels,
                                    const SampleWeighting& weighting, Matrix* d_logits) {
  return ScalarLoss(logits, labels, weighting, d_logits, [](double x, double y) {
    return LossAndSlope{Softplus(x) - x * y, Sigmoid(x) - y};
  });
}

LossValue SoftmaxCrossEntropy(const Matrix& logits, absl::Span<const int32_t> labels,
                              const SampleWeighting& weighting, Matrix* d_logits) {
  const Eigen::Index batch = logits.rows();
  const Eigen::Index num_classes = logits.cols();
  DCHECK_EQ(static_cast<Eigen::Index>(labels.size()), batch);
  CheckWeighting(weighting, batch);
  LossValue loss;
  loss.count = weighting.CountLabelled(batch);
  d_logits->resize(batch, num_classes);
  const double scale = loss.count > 0 ? 1.0 / static_cast<double>(loss.count) : 0.0;
  for (Eigen::Index i = 0; i < batch; ++i) {
    auto d_row = d_logits->row(i);
    if (!weighting.HasLabel(i)) {
      d_row.setZero();
      continue;
    }
    DCHECK(labels[i] >= 0 && labels[i] < num_classes) << labels[i];
    const auto row = logits.row(i);
    // Shifting by the max keeps every exp in (0, 1].
    const float max_logit = row.maxCoeff();
    d_row = (row.array() - max_logit).exp().matrix();
    const double sum_exp = d_row.cast<double>().sum();
    const double weight = weighting.WeightOf(i);
    loss.total += weight * (max_logit + std::log(sum_exp) - row(labels[i]));
    d_row *= static_cast<float>(weight * scale / sum_exp);
    d_row(labels[i]) -= static_cast<float>(weight * scale);
  }
  return loss;
}

LossValue MeanSquaredError(const Matrix& predictions, absl::Span<const float> targets,
                           const SampleWeighting& weighting, Matrix* d_predictions) {
  return ScalarLoss(predictions, targets, weighting, d_predictions, [](double p, double y) {
    return LossAndSlope{(p - y) * (p - y), 2.0 * (p - y)};
  });
}

LossValue PairwiseLogistic(const Matrix& scores, absl::Span<const float> labels,
                           absl::Span<const int64_t> group_ids, const SampleWeighting& weighting,
                           Matrix* d_scores) {
  const Eigen::Index batch = scores.rows();
  DCHECK_EQ(scores.cols(), 1);
  DCHECK_EQ(static_cast<Eigen::Index>(labels.size()), batch);
  DCHECK_EQ(static_cast<Eigen::Index>(group_ids.size()), batch);
  CheckWeighting(weighting, batch);
  d_scores->setZero(batch, 1);
  LossValue loss;
  for (Eigen::Index begin = 0; begin < batch;) {
    Eigen::Index end = begin + 1;
    while (end < batch && group_ids[end] == group_ids[begin]) ++end;
    for (Eigen::Index i = begin; i < end; ++i) {
      if (!weighting.HasLabel(i)) continue;
      for (Eigen::Index j = begin; j < end; ++j) {
        if (!weighting.HasLabel(j) || !(labels[i] > labels[j])) continue;
        const double margin = static_cast<double>(scores(i, 0)) - scores(j, 0);
        const double weight = weighting.WeightOf(i);
        ++loss.count;
        loss.total += weight * Softplus(-margin);
        // d/d margin of log(1 + exp(-margin)) is -sigmoid(-margin).
        const float d_margin = static_cast<float>(-weight * Sigmoid(-margin));
        (*d_scores)(i, 0) += d_margin;
        (*d_scores)(j, 0) -= d_margin;
      }
    }
    begin = end;
  }
  // The pair count is known only now; the gradient so far is that of the total.
  if (loss.count > 0) *d_scores /= static_cast<float>(loss.count);
  return loss;
}

double ProductLogit(double a, double b) {
  // p = sigmoid(a) sigmoid(b) and 1 - p = (e^-a + e^-b + e^(-a-b)) / ((1 + e^-a)(1 + e^-b)),
  // so log(p / (1 - p)) = -log(e^-a + e^-b + e^(-a-b)): a log-sum-exp, shifted by the max of
  // its terms so that no exp overflows.
  const double top = std::max({-a, -b, -a - b});
  return -(top + std::log(std::exp(-a - top) + std::exp(-b - top) + std::exp(-a - b - top)));
}

LossValue ProductSigmoidBinaryCrossEntropy(const Matrix& logits_a, const Matrix& logits_b,
                                           absl::Span<const float> labels,
                                           const SampleWeighting& weighting, Matrix* d_a,
                                           Matrix* d_b) {
  const Eigen::Index batch = logits_a.rows();
  DCHECK_EQ(logits_a.cols(), 1);
  DCHECK_EQ(logits_b.rows(), batch);
  DCHECK_EQ(logits_b.cols(), 1);
  DCHECK_EQ(static_cast<Eigen::Index>(labels.size()), batch);
  CheckWeighting(weighting, batch);
  LossValue loss;
  loss.count = weighting.CountLabelled(batch);
  d_a->setZero(batch, 1);
  d_b->setZero(batch, 1);
  const double scale = loss.count > 0 ? 1.0 / static_cast<double>(loss.count) : 0.0;
  for (Eigen::Index i = 0; i < batch; ++i) {
    if (!weighting.HasLabel(i)) continue;
    const double a = logits_a(i, 0);
    const double b = logits_b(i, 0);
    const double y = labels[i];
    const double logit = ProductLogit(a, b);
    const double log_p = -Softplus(-a) - Softplus(-b);
    const double log_one_minus_p = log_p - logit;
    const double weight = weighting.WeightOf(i);
    loss.total += weight * (-y * log_p - (1 - y) * log_one_minus_p);
    // d(-log p)/da = -sigmoid(-a); d(-log(1 - p))/da = sigmoid(-a) p / (1 - p)
    // = exp(log sigmoid(-a) + logit), at most 1 since 1 - p >= sigmoid(-a).
    const double slope_a = -y * Sigmoid(-a) + (1 - y) * std::exp(logit - Softplus(a));
    const double slope_b = -y * Sigmoid(-b) + (1 - y) * std::exp(logit - Softplus(b));
    (*d_a)(i, 0) = static_cast<float>(weight * slope_a * scale);
    (*d_b)(i, 0) = static_cast<float>(weight * slope_b * scale);
  }
  return loss;
}

}  // namespace nn
}  // namespace granary
