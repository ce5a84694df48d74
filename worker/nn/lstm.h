// Lstm: a single-layer LSTM over a padded, time-major batch of sequences, with full
// backpropagation through time.
//
// Shapes (see tensor.h for the time-major layout): inputs [T * B, input_dim]; lengths B
// values in [0, T]; hidden states [T * B, hidden_dim]; last_hidden [B, hidden_dim].
//
// Per step, with x_t the input and h_{t-1}, c_{t-1} the previous state (zero at t = 0):
//   [i f o g] = [x_t, h_{t-1}] * weight + bias         (gates, each hidden_dim wide)
//   i, f, o = sigmoid(.), g = tanh(.)
//   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
// weight is [input_dim + hidden_dim, 4 * hidden_dim]: its first input_dim rows multiply x_t,
// the rest h_{t-1}. Because the input rows do not depend on the recurrence, Forward applies
// them to all T * B rows with one GEMM and leaves one [B, hidden] x [hidden, 4 * hidden] GEMM
// per step; Backward likewise does one GEMM per step and three over all steps. The three
// sigmoid gates come first so that one pass over 3 * hidden_dim columns activates them.
//
// Masking: a sample's steps t >= length do not change its state; their hidden-state rows are
// zero, any gradient passed for them is ignored, and their inputs get zero gradient. Changing
// a padded input (to another finite value) changes no output. A sample of length 0 has
// all-zero states. Steps past the batch's longest length are skipped altogether.
//
// Not thread-safe: the layer keeps its activations and scratch buffers; one thread at a time.
#ifndef GRANARY_WORKER_NN_LSTM_H_
#define GRANARY_WORKER_NN_LSTM_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class Lstm {
 public:
  // The forget-gate bias starts at 1 rather than 0 so that early in training the cell
  // carries its state instead of forgetting it (Jozefowicz et al. 2015).
  static constexpr float kForgetGateInitialBias = 1.0f;

  // Adds "<name>/weight" ([input_dim + hidden_dim, 4 * hidden_dim], Glorot uniform) and
  // "<name>/bias" ([1, 4 * hidden_dim]: the forget gate's kForgetGateInitialBias, the others
  // 0) to *params, which must outlive the layer.
  Lstm(ParameterSet* params, absl::string_view name, int input_dim, int hidden_dim);
  Lstm(const Lstm&) = delete;
  Lstm& operator=(const Lstm&) = delete;

  // Runs the sequences and returns all hidden states [T * B, hidden_dim] (zero at padded
  // steps), valid until the next Forward; T = inputs.rows() / B. Keeps a pointer to `inputs`
  // for Backward and copies `lengths`.
  // REQUIRES: B = lengths.size() > 0; inputs.rows() is a multiple of B;
  // inputs.cols() == input_dim(); 0 <= lengths[b] <= T; `inputs` stays alive and unchanged
  // until Backward returns.
  const Matrix& Forward(const Matrix& inputs, absl::Span<const int32_t> lengths);

  // [B, hidden_dim]: each sample's hidden state at its last valid step (zero for length 0),
  // from the last Forward.
  const Matrix& last_hidden() const { return last_hidden_; }

  // Given the gradient of the loss w.r.t. the hidden states ([T * B, hidden_dim]; rows at
  // padded steps are ignored) and/or w.r.t. last_hidden ([B, hidden_dim]), either of which
  // may be null when the loss does not use that output, adds the weight and bias gradients
  // into their blocks' grad and returns d_inputs [T * B, input_dim] (zero rows at padded
  // steps), valid until the next Backward.
  const Matrix& Backward(const Matrix* d_hidden, const Matrix* d_last_hidden);

  int input_dim() const { return input_dim_; }
  int hidden_dim() const { return hidden_dim_; }

 private:
  const int input_dim_;
  const int hidden_dim_;
  ParamBlock* const weight_;
  ParamBlock* const bias_;

  // From the last Forward.
  const Matrix* inputs_ = nullptr;
  std::vector<int32_t> lengths_;
  int num_steps_ = 0;
  // max(lengths): steps from here on are padding for every sample, so both passes skip them.
  int active_steps_ = 0;
  Matrix gates_;      // [T * B, 4 * hidden]: activated i, f, o, g
  Matrix cells_;      // [T * B, hidden]: c_t, zero at padded steps
  Matrix cell_tanh_;  // [T * B, hidden]: tanh(c_t), zero at padded steps
  Matrix hidden_;     // [T * B, hidden]: h_t, zero at padded steps
  Matrix last_hidden_;

  // Backward scratch.
  Matrix d_gates_;        // [T * B, 4 * hidden]: gradient w.r.t. gate pre-activations
  Matrix d_hidden_step_;  // [B, hidden]: total gradient w.r.t. h_t
  Matrix d_cell_step_;    // [B, hidden]: total gradient w.r.t. c_t
  Matrix d_hidden_prev_;  // [B, hidden]: the recurrent part of the gradient w.r.t. h_{t-1}
  Matrix d_cell_prev_;    // [B, hidden]: the gradient w.r.t. c_{t-1}
  Matrix d_inputs_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_LSTM_H_
