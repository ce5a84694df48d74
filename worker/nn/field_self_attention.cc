#include "worker/nn/field_self_attention.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace nn {
namespace {

ParamBlock* AddWeight(ParameterSet* params, absl::string_view name, absl::string_view weight,
                      int input_dim, int output_dim) {
  return params->Add(absl::StrCat(name, "/", weight), input_dim, output_dim,
                     ParameterSet::GlorotLimit(input_dim, output_dim));
}

}  // namespace

FieldSelfAttention::FieldSelfAttention(ParameterSet* params, absl::string_view name, int num_fields,
                                       int input_dim, int num_heads, int head_dim)
    : num_fields_(num_fields),
      input_dim_(input_dim),
      num_heads_(num_heads),
      head_dim_(head_dim),
      query_weight_(AddWeight(params, name, "query_weight", input_dim, num_heads * head_dim)),
      key_weight_(AddWeight(params, name, "key_weight", input_dim, num_heads * head_dim)),
      value_weight_(AddWeight(params, name, "value_weight", input_dim, num_heads * head_dim)),
      residual_weight_(
          AddWeight(params, name, "residual_weight", input_dim, num_heads * head_dim)) {
  CHECK_GE(num_fields, 1);
}

const Matrix& FieldSelfAttention::Forward(const Matrix& input) {
  DCHECK_EQ(input.cols(), static_cast<Eigen::Index>(num_fields_) * input_dim_);
  input_ = &input;
  const Eigen::Index batch = input.rows();
  const Eigen::Index rows = batch * num_fields_;
  const int width = output_dim();
  const ConstMatrixMap fields(input.data(), rows, input_dim_);
  queries_.resize(rows, width);
  keys_.resize(rows, width);
  values_.resize(rows, width);
  queries_.noalias() = fields * query_weight_->value;
  keys_.noalias() = fields * key_weight_->value;
  values_.noalias() = fields * value_weight_->value;
  output_.resize(batch, static_cast<Eigen::Index>(num_fields_) * width);
  MatrixMap pre_activation(output_.data(), rows, width);
  pre_activation.noalias() = fields * residual_weight_->value;

  weights_.resize(rows * num_heads_, num_fields_);
  for (Eigen::Index b = 0; b < batch; ++b) {
    const Eigen::Index first = b * num_fields_;
    for (int h = 0; h < num_heads_; ++h) {
      const Eigen::Index column = static_cast<Eigen::Index>(h) * head_dim_;
      auto weights = weights_.middleRows((b * num_heads_ + h) * num_fields_, num_fields_);
      weights.noalias() = queries_.block(first, column, num_fields_, head_dim_) *
                          keys_.block(first, column, num_fields_, head_dim_).transpose();
      for (int m = 0; m < num_fields_; ++m) {
        auto row = weights.row(m);
        row.array() = (row.array() - row.maxCoeff()).exp();
        row /= row.sum();
      }
      pre_activation.block(first, column, num_fields_, head_dim_).noalias() +=
          weights * values_.block(first, column, num_fields_, head_dim_);
    }
  }
  output_ = output_.cwiseMax(0.0f);
  return output_;
}

const Matrix& FieldSelfAttention::Backward(const Matrix& d_output) {
  DCHECK(input_ != nullptr) << "Backward before Forward";
  DCHECK_EQ(d_output.rows(), input_->rows());
  DCHECK_EQ(d_output.cols(), output_.cols());
  const Eigen::Index batch = input_->rows();
  const Eigen::Index rows = batch * num_fields_;
  const int width = output_dim();
  const ConstMatrixMap fields(input_->data(), rows, input_dim_);

  // Through the ReLU: its output is positive exactly where its input was.
  d_pre_activation_.resize(rows, width);
  d_pre_activation_ =
      ConstMatrixMap(d_output.data(), rows, width)
          .cwiseProduct(ConstMatrixMap(output_.data(), rows, width).unaryExpr([](float y) {
            return y > 0 ? 1.0f : 0.0f;
          }));

  d_queries_.resize(rows, width);
  d_keys_.resize(rows, width);
  d_values_.resize(rows, width);
  d_weights_.resize(num_fields_, num_fields_);
  for (Eigen::Index b = 0; b < batch; ++b) {
    const Eigen::Index first = b * num_fields_;
    for (int h = 0; h < num_heads_; ++h) {
      const Eigen::Index column = static_cast<Eigen::Index>(h) * head_dim_;
      const auto weights = weights_.middleRows((b * num_heads_ + h) * num_fields_, num_fields_);
      const auto d_attended = d_pre_activation_.block(first, column, num_fields_, head_dim_);
      d_values_.block(first, column, num_fields_, head_dim_).noalias() =
          weights.transpose() * d_attended;
      d_weights_.noalias() =
          d_attended * values_.block(first, column, num_fields_, head_dim_).transpose();
      // Through the softmax of each row: d_s_mk = a_mk (d_a_mk - sum_j a_mj d_a_mj).
      for (int m = 0; m < num_fields_; ++m) {
        const float expected = weights.row(m).dot(d_weights_.row(m));
        d_weights_.row(m).array() = weights.row(m).array() * (d_weights_.row(m).array() - expected);
      }
      d_queries_.block(first, column, num_fields_, head_dim_).noalias() =
          d_weights_ * keys_.block(first, column, num_fields_, head_dim_);
      d_keys_.block(first, column, num_fields_, head_dim_).noalias() =
          d_weights_.transpose() * queries_.block(first, column, num_fields_, head_dim_);
    }
  }

  query_weight_->grad.noalias() += fields.transpose() * d_queries_;
  key_weight_->grad.noalias() += fields.transpose() * d_keys_;
  value_weight_->grad.noalias() += fields.transpose() * d_values_;
  residual_weight_->grad.noalias() += fields.transpose() * d_pre_activation_;
  d_input_.resize(batch, static_cast<Eigen::Index>(num_fields_) * input_dim_);
  MatrixMap d_fields(d_input_.data(), rows, input_dim_);
  d_fields.noalias() = d_pre_activation_ * residual_weight_->value.transpose();
  d_fields.noalias() += d_queries_ * query_weight_->value.transpose();
  d_fields.noalias() += d_keys_ * key_weight_->value.transpose();
  d_fields.noalias() += d_values_ * value_weight_->value.transpose();
  return d_input_;
}

}  // namespace nn
}  // namespace granary
