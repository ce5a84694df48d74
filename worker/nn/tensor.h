// worker/nn/ is the worker's neural-network library (namespace granary::nn, CMake target
// granary_nn): layers (Dense, Mlp, CrossNetwork, Lstm, AttentionPooling, MixtureOfExperts,
// L2Normalize, embedding pooling), losses (loss.h, retrieval_loss.h) and the ParameterSet that
// holds their weights, on Eigen, batch-major, each with its Forward and Backward. It knows
// nothing of configs, batches or tables: the architectures of worker/models/ compose it. It
// depends only on Eigen and common/.
//
// This file: the dense tensors of the library, and how a batch of sequences is laid out in them.
//
// Every activation and gradient is a row-major float Matrix whose rows are samples: a batch
// of B vectors of width d is a [B, d] Matrix. Weights that multiply activations are
// [input_dim, output_dim], so a layer computes input * weight: one GEMM per batch.
//
// A batch of B sequences of T steps is one [T * B, d] Matrix in time-major order: row
// t * B + b holds step t of sample b. The B rows of one step are therefore one contiguous
// block (StepRows), which a recurrent layer multiplies with one GEMM per step, while a layer
// that treats steps independently (an input projection, an attention score) multiplies all
// T * B rows with one GEMM. Each sample has a length in [0, T]; its steps t >= length are
// padding, always at the end of the sequence. Padded rows may hold any finite values
// (GatherSequence writes zeros): layers give them no influence on results, but a NaN or an
// infinity there would still leak in through products with zero.
//
// Layers keep their outputs and scratch in member Matrices that they resize on each call;
// Eigen reallocates only when a Matrix's size changes, so a steady batch shape allocates
// nothing after the first batch. Eigen's GEMM packs its operands into a stack workspace of
// up to EIGEN_STACK_ALLOCATION_LIMIT bytes, which granary_nn raises to 1 MiB (see
// CMakeLists.txt) so that products at DUPN sizes do not allocate either; much wider layers
// would make Eigen malloc a packing buffer per product.
#ifndef GRANARY_WORKER_NN_TENSOR_H_
#define GRANARY_WORKER_NN_TENSOR_H_

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "absl/types/span.h"
#include "glog/logging.h"

namespace granary {
namespace nn {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A view of a Matrix, or of a block of one with contiguous rows such as
// matrix.middleCols(first, n), or of caller memory through MatrixMap. Binding never copies:
// functions that write their result into caller storage (a column block of a wider input, a
// pulled-rows buffer) take these.
using MatrixRef = Eigen::Ref<Matrix>;
// As MatrixRef, read-only. Binds without a copy to a Matrix, a block with contiguous rows or
// a ConstMatrixMap; other expressions would be copied into a temporary, so pass only those.
using ConstMatrixRef = Eigen::Ref<const Matrix>;

// Row-major views of caller-owned float arrays, e.g. the rows a parameter-server pull filled
// into a std::vector<float>: ConstMatrixMap(values.data(), num_keys, dim).
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;

// The [batch_size, cols] block of step `step` in a time-major sequence batch.
inline auto StepRows(Matrix& sequence, int step, int batch_size) {
  return sequence.middleRows(static_cast<Eigen::Index>(step) * batch_size, batch_size);
}
inline auto StepRows(const Matrix& sequence, int step, int batch_size) {
  return sequence.middleRows(static_cast<Eigen::Index>(step) * batch_size, batch_size);
}

// max(lengths): from this step on, every sample is padding, so sequence layers skip the
// steps beyond it. REQUIRES (checked in debug builds): each length is in [0, num_steps].
inline int LongestLength(absl::Span<const int32_t> lengths, int num_steps) {
  int32_t longest = 0;
  for (int32_t length : lengths) {
    DCHECK(length >= 0 && length <= num_steps) << "length " << length << " of " << num_steps;
    longest = std::max(longest, length);
  }
  return longest;
}

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_TENSOR_H_
