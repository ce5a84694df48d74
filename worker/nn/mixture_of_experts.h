// MixtureOfExperts: the multi-gate mixture-of-experts layer of MMoE (Ma et al., KDD 2018).
//
//   expert e     = ReLU MLP_e(input)                         [B, H]  (e = 0 .. E-1)
//   gate g       = softmax(input * W_g + b_g)                [B, E]  (g = 0 .. G-1, one per task)
//   output g     = sum_e gate g[:, e] * expert e             [B, H]
//
// Every expert sees every sample; each gate (task) mixes them with its own per-sample
// weights, so tasks share experts where that helps and specialize where it does not.
// Parameters: "<name>.expert<e>.<i>" (the experts' layers) and "<name>.gate<g>" (the gates).
//
// Not thread-safe: the layer keeps activations; one thread at a time.
#ifndef GRANARY_WORKER_NN_MIXTURE_OF_EXPERTS_H_
#define GRANARY_WORKER_NN_MIXTURE_OF_EXPERTS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/nn/dense.h"
#include "worker/nn/mlp.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class MixtureOfExperts {
 public:
  // Adds num_experts experts (ReLU layers of `expert_widths` over input_dim) and num_gates
  // gates to *params, which must outlive the layer; with dropout_rate > 0 every expert layer's
  // output goes through a Dropout of that rate in training passes (Mlp). REQUIRES: every
  // size >= 1; dropout_rate in [0, 1).
  MixtureOfExperts(ParameterSet* params, absl::string_view name, int input_dim, int num_experts,
                   absl::Span<const uint32_t> expert_widths, int num_gates,
                   float dropout_rate = 0.0f);
  MixtureOfExperts(const MixtureOfExperts&) = delete;
  MixtureOfExperts& operator=(const MixtureOfExperts&) = delete;

  // Runs the experts and gates on input [B, input_dim]. REQUIRES: `input` stays alive and
  // unchanged until Backward returns.
  void Forward(const Matrix& input);
  // Gate g's mixture [B, output_dim()] and its weights [B, num_experts()] of the last Forward.
  const Matrix& output(int gate) const { return outputs_[gate]; }
  const Matrix& gate_weights(int gate) const { return gate_weights_[gate]; }

  // Given d_outputs[g] [B, output_dim()] for every gate of the last Forward, adds the
  // parameter gradients and returns d_input [B, input_dim], valid until the next Backward.
  const Matrix& Backward(absl::Span<const Matrix* const> d_outputs);

  int num_experts() const { return static_cast<int>(experts_.size()); }
  int num_gates() const { return static_cast<int>(gates_.size()); }
  int output_dim() const { return experts_.front()->output_dim(); }

 private:
  std::vector<std::unique_ptr<Mlp>> experts_;
  std::vector<std::unique_ptr<Dense>> gates_;
  std::vector<const Matrix*> expert_outputs_;  // into the experts, from the last Forward
  std::vector<Matrix> gate_weights_;
  std::vector<Matrix> outputs_;
  // Backward scratch.
  Matrix d_expert_;
  Matrix d_gate_;
  Matrix d_input_;
  Eigen::VectorXf row_scratch_;  // [B]: a per-sample max or sum
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_MIXTURE_OF_EXPERTS_H_
