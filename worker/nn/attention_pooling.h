// AttentionPooling: query-conditioned additive attention over a padded sequence batch, as
// DUPN uses to pool the LSTM states of a user's behaviour sequence by their relevance to the
// target item (or the user profile).
//
// Shapes: states [T * B, state_dim] time-major (see tensor.h); query [B, query_dim]; lengths
// B values in [0, T]; pooled [B, state_dim]. For sample b and step t:
//   u_t = tanh(h_t * state_weight + q * query_weight + bias)     [attention_dim]
//   e_t = u_t . score_vector
//   a_t = softmax of e over the sample's valid steps t < length (0 at padded steps)
//   pooled = sum_t a_t h_t
// Parameters: state_weight [state_dim, attention_dim], query_weight [query_dim,
// attention_dim], bias [1, attention_dim], score_vector [attention_dim, 1].
// The state projection of all T * B rows is one GEMM, the query projection one GEMM per
// batch, the scores one GEMV; Backward mirrors them.
//
// Masking: padded steps get weight 0, so their states do not affect the output and get zero
// gradient. A sample of length 0 pools to zero and passes no gradient to its query.
//
// Not thread-safe: the layer keeps its activations and scratch buffers; one thread at a time.
#ifndef GRANARY_WORKER_NN_ATTENTION_POOLING_H_
#define GRANARY_WORKER_NN_ATTENTION_POOLING_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class AttentionPooling {
 public:
  // Adds "<name>/state_weight", "<name>/query_weight", "<name>/score_vector" (Glorot
  // uniform) and "<name>/bias" (zeros) to *params, which must outlive the layer.
  AttentionPooling(ParameterSet* params, absl::string_view name, int state_dim, int query_dim,
                   int attention_dim);
  AttentionPooling(const AttentionPooling&) = delete;
  AttentionPooling& operator=(const AttentionPooling&) = delete;

  // Returns pooled [B, state_dim], valid until the next Forward. Keeps pointers to `states`
  // and `query` for Backward and copies `lengths`.
  // REQUIRES: B = lengths.size() > 0; states.rows() is a multiple of B (T = rows / B);
  // states.cols() == state_dim(); query is [B, query_dim()]; 0 <= lengths[b] <= T; `states`
  // and `query` stay alive and unchanged until Backward returns.
  const Matrix& Forward(const Matrix& states, const Matrix& query,
                        absl::Span<const int32_t> lengths);

  // Inference for one sequence and N queries (one user's behaviours, N candidate items):
  // returns pooled [N, state_dim], whose row n equals Forward's for N copies of the sequence
  // with query row n, valid until the next ForwardOneSequence. The state projection is
  // computed once instead of N times.
  // Leaves the last Forward's activations (weights(), Backward) alone.
  // REQUIRES: states is [T, state_dim()] (one sample, so row t is step t); 0 <= length <= T;
  // query is [N, query_dim()] with N > 0.
  const Matrix& ForwardOneSequence(const Matrix& states, int length, const Matrix& query);

  // [T, B]: the attention weights of the last Forward; row t holds step t of every sample.
  const Matrix& weights() const { return weights_; }

  // Given d_pooled [B, state_dim] for the last Forward's batch, adds the parameter gradients
  // into their blocks' grad and computes d_states() and d_query().
  void Backward(const Matrix& d_pooled);
  // [T * B, state_dim] and [B, query_dim]: the input gradients of the last Backward, valid
  // until the next one.
  const Matrix& d_states() const { return d_states_; }
  const Matrix& d_query() const { return d_query_; }

  int state_dim() const { return state_dim_; }
  int query_dim() const { return query_dim_; }
  int attention_dim() const { return attention_dim_; }

 private:
  const int state_dim_;
  const int query_dim_;
  const int attention_dim_;
  ParamBlock* const state_weight_;
  ParamBlock* const query_weight_;
  ParamBlock* const bias_;
  ParamBlock* const score_vector_;

  // From the last Forward.
  const Matrix* states_ = nullptr;
  const Matrix* query_ = nullptr;
  std::vector<int32_t> lengths_;
  int num_steps_ = 0;
  int active_steps_ = 0;     // max(lengths): later steps are padding for every sample
  Matrix hidden_;            // [T * B, attention]: u_t
  Matrix query_projection_;  // [B, attention]: q * query_weight + bias
  Matrix scores_;            // [T * B, 1]: e_t
  Matrix weights_;           // [T, B]: a_t
  Matrix pooled_;            // [B, state]
  Matrix per_sample_;        // [1, B] scratch: a max, a normalizer or a weighted sum

  // ForwardOneSequence's activations (length L, N queries).
  Matrix one_states_projection_;  // [L, attention]: h_t * state_weight
  Matrix one_query_projection_;   // [N, attention]: q * query_weight + bias
  Matrix one_hidden_;             // [L * N, attention]: u_t, rows t * N + n
  Matrix one_scores_;             // [L * N, 1]: e_t
  Matrix one_weights_;            // [N, L]: e_t, then a_t
  Matrix one_pooled_;             // [N, state]

  // Backward scratch and results.
  Matrix d_scores_;  // [T * B, 1]: gradient w.r.t. e_t
  Matrix d_hidden_;  // [T * B, attention]: gradient w.r.t. u_t's pre-activation
  Matrix d_query_projection_;
  Matrix d_states_;
  Matrix d_query_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_ATTENTION_POOLING_H_
