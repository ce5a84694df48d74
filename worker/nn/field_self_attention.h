// FieldSelfAttention: one interacting layer of AutoInt (Song et al., CIKM 2019, section 4.3):
// multi-head self-attention among the F field embeddings of each sample, with a residual
// projection and a ReLU, so that every field's output mixes in the fields it interacts with.
//
// Shapes: input [B, F * input_dim], sample b's field m in columns m * input_dim ..; output
// [B, F * output_dim] with output_dim = num_heads * head_dim, laid out alike, so layers stack.
// A row-major [B, F * d] matrix is the [B * F, d] matrix of all fields, so every projection is
// one GEMM over B * F rows. For sample b, head h and fields m, k:
//   q_m = e_m W_query^h,  k_k = e_k W_key^h,  v_k = e_k W_value^h        [head_dim]
//   a_mk = softmax over k of <q_m, k_k>          (the paper's inner product, unscaled: eq. 5)
//   out_m = ReLU(concat_h (sum_k a_mk v_k) + e_m W_residual)                          (eq. 8)
// Parameters: query_weight, key_weight, value_weight, residual_weight, each [input_dim,
// output_dim] (head h owns columns h * head_dim ..); no biases, as in the paper.
//
// Not thread-safe: the layer keeps its activations and scratch buffers; one thread at a time.
// A steady batch shape allocates nothing after the first batch.
#ifndef GRANARY_WORKER_NN_FIELD_SELF_ATTENTION_H_
#define GRANARY_WORKER_NN_FIELD_SELF_ATTENTION_H_

#include "absl/strings/string_view.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class FieldSelfAttention {
 public:
  // Adds "<name>/query_weight", "<name>/key_weight", "<name>/value_weight" and
  // "<name>/residual_weight" (Glorot uniform) to *params, which must outlive the layer.
  // REQUIRES: num_fields, input_dim, num_heads, head_dim >= 1.
  FieldSelfAttention(ParameterSet* params, absl::string_view name, int num_fields, int input_dim,
                     int num_heads, int head_dim);
  FieldSelfAttention(const FieldSelfAttention&) = delete;
  FieldSelfAttention& operator=(const FieldSelfAttention&) = delete;

  // Returns the [B, F * output_dim()] output, valid until the next Forward. Keeps a pointer to
  // `input` for Backward. REQUIRES: input is [B, F * input_dim()] with B >= 1; it stays alive
  // and unchanged until Backward returns.
  const Matrix& Forward(const Matrix& input);

  // Given d_output [B, F * output_dim()] for the last Forward's batch, adds every weight's
  // gradient into its block's grad and returns d_input [B, F * input_dim()], valid until the
  // next Backward.
  const Matrix& Backward(const Matrix& d_output);

  // [B * num_heads * F, F]: the attention weights of the last Forward; row (b * num_heads + h)
  // * F + m holds a_m. of head h in sample b, summing to 1.
  const Matrix& weights() const { return weights_; }

  int num_fields() const { return num_fields_; }
  int input_dim() const { return input_dim_; }
  int output_dim() const { return num_heads_ * head_dim_; }

 private:
  const int num_fields_;
  const int input_dim_;
  const int num_heads_;
  const int head_dim_;
  ParamBlock* const query_weight_;
  ParamBlock* const key_weight_;
  ParamBlock* const value_weight_;
  ParamBlock* const residual_weight_;

  // From the last Forward; the [B * F, .] matrices hold one row per field of each sample.
  const Matrix* input_ = nullptr;
  Matrix queries_;  // [B * F, output_dim]
  Matrix keys_;
  Matrix values_;
  Matrix weights_;  // [B * H * F, F]
  Matrix output_;   // [B, F * output_dim]

  // Backward scratch and result.
  Matrix d_pre_activation_;  // [B * F, output_dim]
  Matrix d_queries_;
  Matrix d_keys_;
  Matrix d_values_;
  Matrix d_weights_;  // [F, F]: one sample's and head's gradient w.r.t. a
  Matrix d_input_;    // [B, F * input_dim]
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_FIELD_SELF_ATTENTION_H_
