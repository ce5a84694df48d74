#include "worker/nn/mixture_of_experts.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace nn {

MixtureOfExperts::MixtureOfExperts(ParameterSet* params, absl::string_view name, int input_dim,
                                   int num_experts, absl::Span<const uint32_t> expert_widths,
                                   int num_gates, float dropout_rate) {
  for (int e = 0; e < num_experts; ++e) {
    experts_.push_back(std::make_unique<Mlp>(params, absl::StrCat(name, ".expert", e), input_dim,
                                             expert_widths, dropout_rate));
  }
  for (int g = 0; g < num_gates; ++g) {
    gates_.push_back(
        std::make_unique<Dense>(params, absl::StrCat(name, ".gate", g), input_dim, num_experts));
  }
  expert_outputs_.resize(num_experts);
  gate_weights_.resize(num_gates);
  outputs_.resize(num_gates);
}

void MixtureOfExperts::Forward(const Matrix& input) {
  for (size_t e = 0; e < experts_.size(); ++e) expert_outputs_[e] = &experts_[e]->Forward(input);
  for (size_t g = 0; g < gates_.size(); ++g) {
    Matrix& weights = gate_weights_[g];
    weights = gates_[g]->Forward(input);
    // Softmax per row, shifted by the row's maximum so that exp cannot overflow.
    row_scratch_ = weights.rowwise().maxCoeff();
    weights.colwise() -= row_scratch_;
    weights = weights.array().exp();
    row_scratch_ = weights.rowwise().sum();
    weights.array().colwise() /= row_scratch_.array();
    Matrix& output = outputs_[g];
    output.setZero(input.rows(), output_dim());
    for (size_t e = 0; e < experts_.size(); ++e) {
      output.array() += expert_outputs_[e]->array().colwise() * weights.col(e).array();
    }
  }
}

const Matrix& MixtureOfExperts::Backward(absl::Span<const Matrix* const> d_outputs) {
  DCHECK_EQ(d_outputs.size(), gates_.size());
  const Eigen::Index n = gate_weights_.front().rows();
  d_input_.setZero(n, gates_.front()->input_dim());
  for (size_t g = 0; g < gates_.size(); ++g) {
    // d gate[:, e] = <d_output, expert e> per sample; through the softmax:
    // d logits = gate * (d gate - sum_e gate * d gate).
    const Matrix& weights = gate_weights_[g];
    d_gate_.resize(n, num_experts());
    for (size_t e = 0; e < experts_.size(); ++e) {
      d_gate_.col(e) = (d_outputs[g]->array() * expert_outputs_[e]->array()).rowwise().sum();
    }
    row_scratch_ = (d_gate_.array() * weights.array()).rowwise().sum();
    d_gate_.colwise() -= row_scratch_;
    d_gate_.array() *= weights.array();
    d_input_ += gates_[g]->Backward(d_gate_);
  }
  for (size_t e = 0; e < experts_.size(); ++e) {
    d_expert_.setZero(n, output_dim());
    for (size_t g = 0; g < gates_.size(); ++g) {
      d_expert_.array() += d_outputs[g]->array().colwise() * gate_weights_[g].col(e).array();
    }
    d_input_ += experts_[e]->Backward(d_expert_);
  }
  return d_input_;
}

}  // namespace nn
}  // namespace granary
