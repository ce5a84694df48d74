// InterestRouting: MIND's behaviour-to-interest (B2I) dynamic routing (Li et al., CIKM 2019,
// section 4.2, Algorithm 1): a user's behaviour embeddings are clustered into up to K interest
// capsules by a few iterations of routing-by-agreement.
//
// Shapes: behaviours [T * B, input_dim] time-major with B lengths (see tensor.h); interests
// [B, K * output_dim], interest j of sample b in columns j * output_dim ... For sample b:
//   K_b   = max(1, min(K, floor(log2(length)))) with adaptive_count, else K     (eq. 9)
//   p_i   = c_i S, S [input_dim, output_dim] shared by every behaviour and interest
//   b_ij  = the initial routing logit of step i and interest j (below)
//   repeat num_iterations times:
//     w_ij = softmax over j < K_b of b_ij
//     z_j  = sum over valid steps i of w_ij p_i
//     u_j  = squash(z_j) = |z_j|^2 / (1 + |z_j|^2) * z_j / |z_j|
//     b_ij += u_j . p_i                                         (not after the last iteration)
// Interests j >= K_b, and every interest of a sample of length 0, are zero.
//
// Initial logits: the paper draws b_ij from N(0, sigma^2) so that the capsules, which share S,
// start apart. Here they are a fixed draw per (step, interest) from U(-initial_logit_limit,
// +initial_logit_limit) by integer hashing, the same on every worker and every call, so a batch's
// forward pass is a function of its inputs (gradient checks, replicas that agree).
//
// Gradient: the routing weights w of the last iteration are held constant (stop-gradient). In
// MIND the routing logits are not parameters but set by the routing itself; the routing decides
// which behaviours form an interest, and training moves S and the behaviours through
// u_j = squash(sum_i w_ij p_i) only, which also keeps the backward pass one iteration deep.
//
// Not thread-safe: the layer keeps its activations and scratch; one thread at a time.
#ifndef GRANARY_WORKER_NN_INTEREST_ROUTING_H_
#define GRANARY_WORKER_NN_INTEREST_ROUTING_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

struct InterestRoutingOptions {
  int num_interests = 4;   // K, >= 1
  int num_iterations = 3;  // routing iterations, >= 1 (the paper uses 3)
  bool adaptive_count = true;
  float initial_logit_limit = 1.0f;  // >= 0
};

class InterestRouting {
 public:
  // Adds "<name>/bilinear" [input_dim, output_dim] (Glorot uniform) to *params, which must
  // outlive the layer. REQUIRES: input_dim, output_dim >= 1; options as documented.
  InterestRouting(ParameterSet* params, absl::string_view name, int input_dim, int output_dim,
                  const InterestRoutingOptions& options);
  InterestRouting(const InterestRouting&) = delete;
  InterestRouting& operator=(const InterestRouting&) = delete;

  // Returns interests [B, K * output_dim], valid until the next Forward. Keeps a pointer to
  // `behaviours` for Backward and copies `lengths`. REQUIRES: B = lengths.size() >= 1;
  // behaviours.rows() is a multiple of B (T = rows / B); 0 <= lengths[b] <= T; `behaviours`
  // stays alive and unchanged until Backward returns.
  const Matrix& Forward(const Matrix& behaviours, absl::Span<const int32_t> lengths);

  // [B]: K_b, the interests sample b has (later ones are zero).
  const std::vector<int32_t>& interest_counts() const { return counts_; }
  // [T * B, K]: the routing weights w of the last iteration (0 at padded steps and at
  // interests j >= K_b).
  const Matrix& routing_weights() const { return weights_; }

  // Given d_interests [B, K * output_dim], adds the bilinear map's gradient into its grad and
  // returns d_behaviours [T * B, input_dim] (zero at padded steps), valid until the next
  // Backward. The routing weights are constants (see above).
  const Matrix& Backward(const Matrix& d_interests);

  int num_interests() const { return options_.num_interests; }
  int output_dim() const { return output_dim_; }

 private:
  // The initial routing logit of step t and interest j.
  float InitialLogit(int step, int interest) const;

  const int input_dim_;
  const int output_dim_;
  const InterestRoutingOptions options_;
  ParamBlock* const bilinear_;

  const Matrix* behaviours_ = nullptr;
  std::vector<int32_t> lengths_;
  std::vector<int32_t> counts_;
  Matrix projected_;  // [T * B, output_dim]: p_i
  Matrix logits_;     // [T * B, K]: b_ij
  Matrix weights_;    // [T * B, K]: w_ij of the last iteration
  Matrix summed_;     // [B, K * output_dim]: z_j of the last iteration
  Matrix interests_;  // [B, K * output_dim]: u_j

  Matrix d_projected_;  // [T * B, output_dim]
  Matrix d_summed_;     // [B, K * output_dim]
  Matrix d_behaviours_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_INTEREST_ROUTING_H_
