// LookalikeScorer: the look-alike stage of RALM (Liu et al., KDD 2019): scores a target user
// against an item represented by its seed users' centroids (worker/models/seed_store.h).
//
// For sample b with user vector u [1, d] and its item's k centroids C [k, d] (rows c_1..c_k):
//   global attention (the seeds among themselves):
//     e_i = tanh(c_i W_g + b_g) . v_g + z_g log n_i,       a = softmax(e),   g = sum_i a_i c_i
//   local attention (the target user against the seeds):
//     f_i = s_l * tanh(c_i W_l . u) + z_l log n_i,         a' = softmax(f),  l = sum_i a'_i c_i
//   score = w_g cos(u, g) + w_l cos(u, l) + w_m log sum_i exp(f_i) + bias      (a logit)
// where n_i is the share of the item's seeds in centroid i. The size terms are ours: a centroid
// of one stray clicker would otherwise weigh as much as one of most seeds, and with z = 1 and
// the other scores 0 both attentions pool exactly the mean of the seeds, so training starts from
// the average-pooled ablation and moves away only where the data says so.
// The paper's local attention is softmax(tanh(E_s^T W_l E_u)); the trained sharpness s_l lets it
// concentrate on one of many centroids, which tanh alone bounds to weights within e^2 of each
// other. The paper weighs the two cosines by α and β; here w_g, w_l and the bias are
// trained, so the score is a calibrated logit for the click loss. The mass term (ours too) is the
// local attention's normalizer, sum_i n_i^z_l exp(s_l tanh(...)): how much of the item's seed
// mass lies near the user. A softmax forgets it (l is a convex mix whether the centroid near the
// user holds most seeds or one stray clicker), and on the synthetic test the local cosine alone
// got a negative weight for that reason.
//
// No weight belongs to an item, so an item the scorer never saw in training is scored as soon
// as it has seeds. Fed one centroid per item, the mean of its seeds (SeedStore::ItemSeeds::mean),
// both attentions are the identity and the scorer is the average-pooled seed set, RALM's
// ablation: (w_g + w_l) cos(u, mean) + w_m s_l tanh(mean W_l . u) + bias.
//
// Parameters: "<name>/global_weight" [d, attention_dim] (Glorot uniform), "<name>/global_bias"
// [1, attention_dim], "<name>/global_score" [attention_dim, 1] and "<name>/local_weight" [d, d]
// (zeros, so that training starts from the seeds' mean), "<name>/local_sharpness" [1, 1],
// "<name>/size_weight" [1, 2] (z_g, z_l), "<name>/merge_weight" [1, 3] (w_g, w_l, w_m) and
// "<name>/merge_bias" [1, 1] (zero), the others set from the options; ParameterSet::Initialize
// draws only the Glorot block.
// A sample whose item has no centroid scores the bias alone.
//
// Not thread-safe: the scorer keeps its activations between Forward and Backward.
#ifndef GRANARY_WORKER_MODELS_RALM_LOOKALIKE_H_
#define GRANARY_WORKER_MODELS_RALM_LOOKALIKE_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

struct LookalikeOptions {
  // Width of the global attention's hidden layer. Default 16.
  int attention_dim = 16;
  // The starting s_l. Default 4: once W_l has grown, the nearest of a few centroids can lead.
  float initial_local_sharpness = 4.0f;
  // The starting w_g and w_l: a cosine of 1 adds this much to the logit. Default 5, so that
  // cosines in [-1, 1] span odds from e^-10 to e^10 between them.
  float initial_merge_weight = 5.0f;
  // The starting w_m. Default 0: training starts from the cosines alone.
  float initial_mass_weight = 0.0f;
  // The starting z_g and z_l. Default 1: attention in proportion to the centroids' sizes.
  float initial_size_weight = 1.0f;
};

class LookalikeScorer {
 public:
  // Adds the parameters named above to *params, which must outlive the scorer. REQUIRES:
  // dim >= 1, options.attention_dim >= 1.
  LookalikeScorer(nn::ParameterSet* params, absl::string_view name, int dim,
                  const LookalikeOptions& options);
  LookalikeScorer(const LookalikeScorer&) = delete;
  LookalikeScorer& operator=(const LookalikeScorer&) = delete;

  // Returns the logits [B, 1], valid until the next Forward. `users` is [B, d]; `seeds` [S, d]
  // holds every sample's centroids, sample b's being rows [offsets[b], offsets[b + 1]), and
  // `log_shares` [S, 1] the log of each centroid's share of its item's seeds (0 for a single
  // vector). REQUIRES: offsets has B + 1 non-decreasing entries from 0 to S; `users`, `seeds`
  // and `log_shares` stay alive and unchanged until Backward returns.
  const nn::Matrix& Forward(const nn::Matrix& users, const nn::Matrix& seeds,
                            const nn::Matrix& log_shares, absl::Span<const int32_t> offsets);

  // Given d_logits [B, 1] for the last Forward, adds the parameter gradients into their
  // blocks' grad and computes d_users() [B, d] and d_seeds() [S, d], valid until the next
  // Backward.
  void Backward(const nn::Matrix& d_logits);
  const nn::Matrix& d_users() const { return d_users_; }
  const nn::Matrix& d_seeds() const { return d_seeds_; }

  // [S, 1]: the global and local attention weights of the last Forward, per centroid.
  const nn::Matrix& global_weights() const { return global_weights_; }
  const nn::Matrix& local_weights() const { return local_weights_; }

 private:
  const int dim_;
  nn::ParamBlock* const global_weight_;
  nn::ParamBlock* const global_bias_;
  nn::ParamBlock* const global_score_;
  nn::ParamBlock* const local_weight_;
  nn::ParamBlock* const local_sharpness_;
  nn::ParamBlock* const size_weight_;
  nn::ParamBlock* const merge_weight_;
  nn::ParamBlock* const merge_bias_;

  // From the last Forward.
  const nn::Matrix* users_ = nullptr;
  const nn::Matrix* seeds_ = nullptr;
  const nn::Matrix* log_shares_ = nullptr;
  std::vector<int32_t> offsets_;
  nn::Matrix global_hidden_;   // [S, attention_dim]: tanh(C W_g + b_g)
  nn::Matrix global_scores_;   // [S, 1]: e
  nn::Matrix global_weights_;  // [S, 1]: a
  nn::Matrix user_queries_;    // [B, d]: u W_l^T, so that c_i W_l . u = c_i . (u W_l^T)
  nn::Matrix local_tanh_;      // [S, 1]: tanh(c_i W_l . u)
  nn::Matrix local_scores_;    // [S, 1]: f
  nn::Matrix local_weights_;   // [S, 1]: a'
  nn::Matrix pooled_;          // [B, 2d]: g | l
  nn::Matrix merge_inputs_;    // [B, 3]: cos(u, g) | cos(u, l) | log sum_i exp(f_i)
  nn::Matrix logits_;          // [B, 1]

  // Backward results and scratch.
  nn::Matrix d_users_;
  nn::Matrix d_seeds_;
  nn::Matrix d_user_queries_;                         // [B, d]
  nn::Matrix d_global_scores_;                        // [S, 1]
  nn::Matrix d_global_weights_;                       // [S, 1]
  nn::Matrix d_local_weights_;                        // [S, 1]
  nn::Matrix d_local_scores_;                         // [S, 1]
  nn::Matrix d_hidden_;                               // [S, attention_dim]
  nn::Matrix d_products_;                             // [k, 1]: one sample's d (c_i . q_b)
  Eigen::Matrix<float, 1, Eigen::Dynamic> d_pooled_;  // one sample's d g or d l
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_RALM_LOOKALIKE_H_
