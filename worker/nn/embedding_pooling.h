// Embedding pooling and sequence gathering: the bridge from the rows a worker pulled from the
// parameter server to the model's dense inputs, and back from their gradients to the
// per-row gradients it pushes.
//
// Embeddings are not parameters of the model library: the trainer pulls the rows of the
// batch's unique keys into a [num_rows, dim] matrix (`rows`, typically a ConstMatrixMap over
// the pulled std::vector<float>), and the functions below address them by row index. Their
// backward passes scatter-add into a [num_rows, dim] gradient matrix of the same layout,
// which the trainer pushes with the same keys.
//
// Outputs are MatrixRef so that they can be a column block of a wider matrix: several
// fields gathered side by side into one LSTM input, or pooled straight into an MLP input,
// with no concatenation copy. The functions allocate nothing.
//
// Thread-safe: pure functions of their arguments; concurrent calls must not share outputs.
#ifndef GRANARY_WORKER_NN_EMBEDDING_POOLING_H_
#define GRANARY_WORKER_NN_EMBEDDING_POOLING_H_

#include <cstdint>

#include "absl/types/span.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

// The values of one multi-valued field for a batch, in CSR form: sample b's values are
// row_ids[offsets[b] .. offsets[b + 1]), each a row of the pulled-rows matrix.
struct MultiValuedField {
  absl::Span<const int32_t> offsets;  // B + 1 entries, offsets[0] == 0, non-decreasing
  absl::Span<const int32_t> row_ids;  // offsets[B] entries, each in [0, num_rows)
  absl::Span<const float> weights;    // empty (every value weighs 1), or offsets[B] entries

  int batch_size() const { return static_cast<int>(offsets.size()) - 1; }
};

enum class Pooling {
  kSum,   // sum_i w_i e_i
  kMean,  // sum_i w_i e_i / sum_i w_i (the plain mean when unweighted); 0 if sum_i w_i == 0
};

// Writes each sample's pooled embedding into row b of pooled [B, dim]; a sample with no
// values pools to zero.
// REQUIRES: rows.cols() == pooled.cols(); pooled.rows() == field.batch_size(); the field
// satisfies MultiValuedField's contract.
void PoolEmbeddings(ConstMatrixRef rows, const MultiValuedField& field, Pooling pooling,
                    MatrixRef pooled);

// Given d_pooled [B, dim], adds each value's gradient into its row of d_rows [num_rows, dim]
// (adds, so several fields over the same pulled rows accumulate; the caller zeroes d_rows
// once per batch).
// REQUIRES: as PoolEmbeddings, with d_rows shaped like the `rows` of the forward pass.
void PoolEmbeddingsBackward(ConstMatrixRef d_pooled, const MultiValuedField& field, Pooling pooling,
                            MatrixRef d_rows);

// The row id of a sequence step that does not exist (the sample is shorter than T).
inline constexpr int32_t kPaddingRow = -1;

// Gathers a sequence field into time-major order (see tensor.h): step t of sample b, whose
// row id is step_row_ids[b * T + t] (sample-major, as readers produce them), lands in row
// t * B + b of sequence [T * B, dim]. Steps with kPaddingRow are zero.
// REQUIRES: step_row_ids.size() == B * T with T = num_steps > 0; each id is kPaddingRow or in
// [0, rows.rows()); sequence is [B * T, rows.cols()].
void GatherSequence(ConstMatrixRef rows, absl::Span<const int32_t> step_row_ids, int num_steps,
                    MatrixRef sequence);

// Given d_sequence [T * B, dim], adds each non-padding step's gradient into its row of d_rows
// [num_rows, dim]. REQUIRES: as GatherSequence, with d_rows shaped like its `rows`.
void GatherSequenceBackward(ConstMatrixRef d_sequence, absl::Span<const int32_t> step_row_ids,
                            int num_steps, MatrixRef d_rows);

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_EMBEDDING_POOLING_H_
