#include "worker/nn/attention_pooling.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace nn {

AttentionPooling::AttentionPooling(ParameterSet* params, absl::string_view name, int state_dim,
                                   int query_dim, int attention_dim)
    : state_dim_(state_dim),
      query_dim_(query_dim),
      attention_dim_(attention_dim),
      state_weight_(params->Add(absl::StrCat(name, "/state_weight"), state_dim, attention_dim,
                                ParameterSet::GlorotLimit(state_dim, attention_dim))),
      query_weight_(params->Add(absl::StrCat(name, "/query_weight"), query_dim, attention_dim,
                                ParameterSet::GlorotLimit(query_dim, attention_dim))),
      bias_(params->Add(absl::StrCat(name, "/bias"), 1, attention_dim, 0.0f)),
      score_vector_(params->Add(absl::StrCat(name, "/score_vector"), attention_dim, 1,
                                ParameterSet::GlorotLimit(attention_dim, 1))) {}

const Matrix& AttentionPooling::Forward(const Matrix& states, const Matrix& query,
                                        absl::Span<const int32_t> lengths) {
  const int batch = static_cast<int>(lengths.size());
  DCHECK_GT(batch, 0);
  DCHECK_EQ(states.rows() % batch, 0);
  DCHECK_EQ(states.cols(), state_dim_);
  DCHECK_EQ(query.rows(), batch);
  DCHECK_EQ(query.cols(), query_dim_);
  const int steps = static_cast<int>(states.rows() / batch);
  states_ = &states;
  query_ = &query;
  lengths_.assign(lengths.begin(), lengths.end());
  num_steps_ = steps;
  active_steps_ = LongestLength(lengths_, steps);
  const Eigen::Index active_rows = static_cast<Eigen::Index>(active_steps_) * batch;

  hidden_.resize(states.rows(), attention_dim_);
  query_projection_.resize(batch, attention_dim_);
  scores_.resize(states.rows(), 1);
  weights_.resize(steps, batch);
  pooled_.resize(batch, state_dim_);
  per_sample_.resize(1, batch);
  if (active_steps_ == 0) {
    weights_.setZero();
    pooled_.setZero();
    return pooled_;
  }

  query_projection_.noalias() = query * query_weight_->value;
  query_projection_.rowwise() += bias_->value.row(0);
  auto hidden = hidden_.topRows(active_rows);
  hidden.noalias() = states.topRows(active_rows) * state_weight_->value;
  for (int t = 0; t < active_steps_; ++t) StepRows(hidden_, t, batch) += query_projection_;
  hidden = hidden.array().tanh();
  scores_.topRows(active_rows).noalias() = hidden * score_vector_->value;

  // Softmax down each column of the [T, B] score matrix, over the sample's valid steps only.
  // Padded scores are set to the lowest float so that they never win the max; their weights
  // are zeroed after the exp (Eigen's exp does not quite reach 0).
  const ConstMatrixMap scores(scores_.data(), steps, batch);
  weights_.topRows(active_steps_) = scores.topRows(active_steps_);
  for (int b = 0; b < batch; ++b) {
    for (int t = lengths_[b]; t < active_steps_; ++t) {
      weights_(t, b) = std::numeric_limits<float>::lowest();
    }
  }
  auto active_weights = weights_.topRows(active_steps_);
  per_sample_ = active_weights.colwise().maxCoeff();
  active_weights.rowwise() -= per_sample_.row(0);
  active_weights = active_weights.array().exp();
  for (int b = 0; b < batch; ++b) {
    for (int t = lengths_[b]; t < active_steps_; ++t) weights_(t, b) = 0.0f;
  }
  per_sample_ = active_weights.colwise().sum();
  for (int b = 0; b < batch; ++b) {
    per_sample_(0, b) = lengths_[b] > 0 ? 1.0f / per_sample_(0, b) : 0.0f;
  }
  active_weights.array().rowwise() *= per_sample_.row(0).array();
  weights_.bottomRows(steps - active_steps_).setZero();

  pooled_.setZero();
  for (int t = 0; t < active_steps_; ++t) {
    pooled_.array() +=
        StepRows(states, t, batch).array().colwise() * weights_.row(t).transpose().array();
  }
  return pooled_;
}

const Matrix& AttentionPooling::ForwardOneSequence(const Matrix& states, int length,
                                                   const Matrix& query) {
  DCHECK_EQ(states.cols(), state_dim_);
  DCHECK(length >= 0 && length <= states.rows()) << length;
  DCHECK_GT(query.rows(), 0);
  DCHECK_EQ(query.cols(), query_dim_);
  const Eigen::Index queries = query.rows();
  one_pooled_.resize(queries, state_dim_);
  if (length == 0) {
    one_pooled_.setZero();
    return one_pooled_;
  }
  const auto valid_states = states.topRows(length);
  one_states_projection_.noalias() = valid_states * state_weight_->value;
  one_query_projection_.noalias() = query * query_weight_->value;
  one_query_projection_.rowwise() += bias_->value.row(0);
  // u for every (step, query) pair in one [L * N, attention] block, rows t * N + n, so that
  // tanh runs as one vectorized pass (on a broadcast sum Eigen evaluates it per element) and
  // the scores as one GEMV.
  one_hidden_.resize(static_cast<Eigen::Index>(length) * queries, attention_dim_);
  for (int t = 0; t < length; ++t) {
    one_hidden_.middleRows(t * queries, queries) =
        one_query_projection_.rowwise() + one_states_projection_.row(t);
  }
  one_hidden_ = one_hidden_.array().tanh();
  one_scores_.noalias() = one_hidden_ * score_vector_->value;
  one_weights_ = ConstMatrixMap(one_scores_.data(), length, queries).transpose();
  // Softmax along each query's row; every step is valid, so no masking.
  one_weights_.colwise() -= one_weights_.rowwise().maxCoeff();
  one_weights_ = one_weights_.array().exp();
  one_weights_.array().colwise() /= one_weights_.rowwise().sum().array();
  one_pooled_.noalias() = one_weights_ * valid_states;
  return one_pooled_;
}

void AttentionPooling::Backward(const Matrix& d_pooled) {
  DCHECK(states_ != nullptr) << "Backward before Forward";
  const int batch = static_cast<int>(lengths_.size());
  DCHECK_EQ(d_pooled.rows(), batch);
  DCHECK_EQ(d_pooled.cols(), state_dim_);
  const Matrix& states = *states_;
  const Eigen::Index active_rows = static_cast<Eigen::Index>(active_steps_) * batch;

  d_states_.resize(states.rows(), state_dim_);
  d_scores_.resize(states.rows(), 1);
  d_hidden_.resize(states.rows(), attention_dim_);
  d_query_projection_.resize(batch, attention_dim_);
  d_query_.resize(batch, query_dim_);
  per_sample_.resize(1, batch);
  if (active_steps_ == 0) {
    d_states_.setZero();
    d_query_.setZero();
    return;
  }

  // Through pooled = sum_t a_t h_t: the direct part of d_states, and d_a into d_scores_.
  MatrixMap d_attention(d_scores_.data(), num_steps_, batch);
  for (int t = 0; t < active_steps_; ++t) {
    const auto step_states = StepRows(states, t, batch);
    StepRows(d_states_, t, batch).array() =
        d_pooled.array().colwise() * weights_.row(t).transpose().array();
    d_attention.row(t) = (step_states.array() * d_pooled.array()).rowwise().sum().transpose();
  }
  // Through the softmax: d_e_t = a_t (d_a_t - sum_s a_s d_a_s); zero where a_t is 0.
  auto active_d_attention = d_attention.topRows(active_steps_);
  const auto active_weights = weights_.topRows(active_steps_);
  per_sample_ = active_weights.cwiseProduct(active_d_attention).colwise().sum();
  active_d_attention.rowwise() -= per_sample_.row(0);
  active_d_attention.array() *= active_weights.array();

  // Through e_t = u_t . v and u_t = tanh(pre-activation).
  const auto active_d_scores = d_scores_.topRows(active_rows);
  const auto hidden = hidden_.topRows(active_rows);
  score_vector_->grad.noalias() += hidden.transpose() * active_d_scores;
  auto d_hidden = d_hidden_.topRows(active_rows);
  d_hidden.noalias() = active_d_scores * score_vector_->value.transpose();
  d_hidden.array() *= 1.0f - hidden.array().square();

  // Through the pre-activation h_t * state_weight + q * query_weight + bias.
  state_weight_->grad.noalias() += states.topRows(active_rows).transpose() * d_hidden;
  d_states_.topRows(active_rows).noalias() += d_hidden * state_weight_->value.transpose();
  d_states_.bottomRows(states.rows() - active_rows).setZero();
  d_query_projection_.setZero();
  for (int t = 0; t < active_steps_; ++t) d_query_projection_ += StepRows(d_hidden_, t, batch);
  query_weight_->grad.noalias() += query_->transpose() * d_query_projection_;
  bias_->grad.row(0) += d_query_projection_.colwise().sum();
  d_query_.noalias() = d_query_projection_ * query_weight_->value.transpose();
}

}  // namespace nn
}  // namespace granary
