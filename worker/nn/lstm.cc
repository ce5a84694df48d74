#include "worker/nn/lstm.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace nn {

Lstm::Lstm(ParameterSet* params, absl::string_view name, int input_dim, int hidden_dim)
    : input_dim_(input_dim),
      hidden_dim_(hidden_dim),
      weight_(params->Add(absl::StrCat(name, "/weight"), input_dim + hidden_dim, 4 * hidden_dim,
                          ParameterSet::GlorotLimit(input_dim + hidden_dim, 4 * hidden_dim))),
      bias_(params->Add(absl::StrCat(name, "/bias"), 1, 4 * hidden_dim, 0.0f)) {
  bias_->value.middleCols(hidden_dim, hidden_dim).setConstant(kForgetGateInitialBias);
}

const Matrix& Lstm::Forward(const Matrix& inputs, absl::Span<const int32_t> lengths) {
  const int batch = static_cast<int>(lengths.size());
  DCHECK_GT(batch, 0);
  DCHECK_EQ(inputs.rows() % batch, 0);
  DCHECK_EQ(inputs.cols(), input_dim_);
  const int steps = static_cast<int>(inputs.rows() / batch);
  const int h = hidden_dim_;
  inputs_ = &inputs;
  lengths_.assign(lengths.begin(), lengths.end());
  num_steps_ = steps;
  active_steps_ = LongestLength(lengths_, steps);

  gates_.resize(inputs.rows(), 4 * h);
  cells_.resize(inputs.rows(), h);
  cell_tanh_.resize(inputs.rows(), h);
  hidden_.resize(inputs.rows(), h);
  last_hidden_.resize(batch, h);

  const Eigen::Index active_rows = static_cast<Eigen::Index>(active_steps_) * batch;
  const auto input_weight = weight_->value.topRows(input_dim_);
  const auto recurrent_weight = weight_->value.bottomRows(h);
  gates_.topRows(active_rows).noalias() = inputs.topRows(active_rows) * input_weight;
  gates_.topRows(active_rows).rowwise() += bias_->value.row(0);

  for (int t = 0; t < active_steps_; ++t) {
    auto gates = StepRows(gates_, t, batch);
    if (t > 0) gates.noalias() += StepRows(hidden_, t - 1, batch) * recurrent_weight;
    gates.leftCols(3 * h) = gates.leftCols(3 * h).array().logistic();
    gates.rightCols(h) = gates.rightCols(h).array().tanh();
    const auto input_gate = gates.leftCols(h).array();
    const auto forget_gate = gates.middleCols(h, h).array();
    const auto output_gate = gates.middleCols(2 * h, h).array();
    const auto candidate = gates.rightCols(h).array();

    auto cell = StepRows(cells_, t, batch);
    cell.array() = input_gate * candidate;
    if (t > 0) cell.array() += forget_gate * StepRows(cells_, t - 1, batch).array();
    auto cell_tanh = StepRows(cell_tanh_, t, batch);
    cell_tanh.array() = cell.array().tanh();
    auto hidden = StepRows(hidden_, t, batch);
    hidden.array() = output_gate * cell_tanh.array();

    for (int b = 0; b < batch; ++b) {
      if (t >= lengths_[b]) {
        cell.row(b).setZero();
        cell_tanh.row(b).setZero();
        hidden.row(b).setZero();
      }
    }
  }
  const Eigen::Index padded_rows = inputs.rows() - active_rows;
  cells_.bottomRows(padded_rows).setZero();
  cell_tanh_.bottomRows(padded_rows).setZero();
  hidden_.bottomRows(padded_rows).setZero();

  for (int b = 0; b < batch; ++b) {
    if (lengths_[b] > 0) {
      last_hidden_.row(b) = hidden_.row(static_cast<Eigen::Index>(lengths_[b] - 1) * batch + b);
    } else {
      last_hidden_.row(b).setZero();
    }
  }
  return hidden_;
}

const Matrix& Lstm::Backward(const Matrix* d_hidden, const Matrix* d_last_hidden) {
  DCHECK(inputs_ != nullptr) << "Backward before Forward";
  DCHECK(d_hidden != nullptr || d_last_hidden != nullptr);
  const int batch = static_cast<int>(lengths_.size());
  const int h = hidden_dim_;
  const Eigen::Index total_rows = static_cast<Eigen::Index>(num_steps_) * batch;
  const Eigen::Index active_rows = static_cast<Eigen::Index>(active_steps_) * batch;
  DCHECK(d_hidden == nullptr || (d_hidden->rows() == total_rows && d_hidden->cols() == h));
  DCHECK(d_last_hidden == nullptr ||
         (d_last_hidden->rows() == batch && d_last_hidden->cols() == h));

  d_gates_.resize(total_rows, 4 * h);
  d_hidden_step_.resize(batch, h);
  d_cell_step_.resize(batch, h);
  d_hidden_prev_.resize(batch, h);
  d_cell_prev_.resize(batch, h);
  d_inputs_.resize(total_rows, input_dim_);
  d_hidden_prev_.setZero();
  d_cell_prev_.setZero();

  const auto input_weight = weight_->value.topRows(input_dim_);
  const auto recurrent_weight = weight_->value.bottomRows(h);
  for (int t = active_steps_ - 1; t >= 0; --t) {
    if (d_hidden != nullptr) {
      d_hidden_step_ = StepRows(*d_hidden, t, batch) + d_hidden_prev_;
    } else {
      d_hidden_step_ = d_hidden_prev_;
    }
    if (d_last_hidden != nullptr) {
      for (int b = 0; b < batch; ++b) {
        if (lengths_[b] - 1 == t) d_hidden_step_.row(b) += d_last_hidden->row(b);
      }
    }
    const auto gates = StepRows(gates_, t, batch);
    const auto input_gate = gates.leftCols(h).array();
    const auto forget_gate = gates.middleCols(h, h).array();
    const auto output_gate = gates.middleCols(2 * h, h).array();
    const auto candidate = gates.rightCols(h).array();
    const auto cell_tanh = StepRows(cell_tanh_, t, batch).array();
    const auto d_h = d_hidden_step_.array();
    auto d_gates = StepRows(d_gates_, t, batch);

    d_cell_step_.array() = d_cell_prev_.array() + d_h * output_gate * (1.0f - cell_tanh.square());
    const auto d_c = d_cell_step_.array();
    d_gates.leftCols(h).array() = d_c * candidate * input_gate * (1.0f - input_gate);
    if (t > 0) {
      d_gates.middleCols(h, h).array() =
          d_c * StepRows(cells_, t - 1, batch).array() * forget_gate * (1.0f - forget_gate);
    } else {
      d_gates.middleCols(h, h).setZero();
    }
    d_gates.middleCols(2 * h, h).array() = d_h * cell_tanh * output_gate * (1.0f - output_gate);
    d_gates.rightCols(h).array() = d_c * input_gate * (1.0f - candidate.square());
    d_cell_prev_.array() = d_c * forget_gate;

    for (int b = 0; b < batch; ++b) {
      if (t >= lengths_[b]) {
        d_gates.row(b).setZero();
        d_cell_prev_.row(b).setZero();
      }
    }
    if (t > 0) d_hidden_prev_.noalias() = d_gates * recurrent_weight.transpose();
  }

  // Steps past every sample's end contribute nothing; the GEMMs below skip their rows.
  d_gates_.bottomRows(total_rows - active_rows).setZero();
  d_inputs_.bottomRows(total_rows - active_rows).setZero();
  const auto active_d_gates = d_gates_.topRows(active_rows);
  weight_->grad.topRows(input_dim_).noalias() +=
      inputs_->topRows(active_rows).transpose() * active_d_gates;
  if (active_steps_ > 1) {
    // h_{t-1} for steps 1..active-1 is hidden_ shifted one step back.
    weight_->grad.bottomRows(h).noalias() += hidden_.topRows(active_rows - batch).transpose() *
                                             d_gates_.middleRows(batch, active_rows - batch);
  }
  bias_->grad.row(0) += active_d_gates.colwise().sum();
  d_inputs_.topRows(active_rows).noalias() = active_d_gates * input_weight.transpose();
  return d_inputs_;
}

}  // namespace nn
}  // namespace granary
