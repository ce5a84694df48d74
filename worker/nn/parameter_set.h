// ParameterSet: the dense parameters of a model (layer weights and biases), each a named
// block with a value and a gradient, and their flat view for the parameter server's dense
// table.
//
// Layers create their blocks through ParameterSet::Add when they are constructed and keep
// the returned pointers; Forward reads block->value and Backward adds into block->grad. The
// trainer moves all values and gradients as one float vector: FlattenValues / LoadValues /
// FlattenGrads concatenate the blocks in the order they were added, each block row-major.
// Two models built by the same code therefore have the same flat layout.
//
// Initialize(seed) is deterministic and platform-independent (integer hashing and exact float
// arithmetic, no <random> distributions), so every worker that builds the same model with
// the same seed starts from bit-identical values.
//
// Not thread-safe: a ParameterSet and the layers that use it belong to one thread at a time.
#ifndef GRANARY_WORKER_NN_PARAMETER_SET_H_
#define GRANARY_WORKER_NN_PARAMETER_SET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "worker/nn/forward_mode.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

// One dense parameter: a weight matrix or a bias row.
struct ParamBlock {
  std::string name;  // unique within its ParameterSet, e.g. "user_mlp.0/weight"
  Matrix value;
  Matrix grad;  // same shape as value; Backward adds to it, ZeroGrads clears it
  // Initialize draws value from U(-init_limit, init_limit) when init_limit > 0; a block with
  // init_limit == 0 keeps the value its layer wrote after Add (zeros unless the layer chose
  // otherwise, like the LSTM's forget-gate bias of 1).
  float init_limit = 0.0f;
};

class ParameterSet {
 public:
  ParameterSet() = default;
  // Layers hold pointers into the set's blocks; a copy would leave them pointing at the
  // original.
  ParameterSet(const ParameterSet&) = delete;
  ParameterSet& operator=(const ParameterSet&) = delete;

  // The Glorot (Xavier) uniform limit sqrt(6 / (fan_in + fan_out)), which keeps activation
  // and gradient variance roughly constant across a layer.
  static float GlorotLimit(int fan_in, int fan_out);

  // Adds a block of rows x cols zeros (value and grad) and returns it; the pointer stays
  // valid for the life of the set. REQUIRES: `name` is not already in the set (checked:
  // two layers sharing a name is a bug in the model code); rows, cols > 0; init_limit >= 0.
  ParamBlock* Add(absl::string_view name, int rows, int cols, float init_limit);

  // The blocks in the order they were added.
  const std::vector<std::unique_ptr<ParamBlock>>& blocks() const { return blocks_; }
  // The block named `name`, or null.
  ParamBlock* Find(absl::string_view name) const;

  // Total floats over all blocks: the length of the flat value and gradient vectors.
  int64_t num_values() const { return num_values_; }

  // Draws every block with init_limit > 0 from U(-init_limit, init_limit). A block's draws
  // depend only on (seed, block name), so adding a layer does not change the others.
  void Initialize(uint64_t seed);

  // Resizes *values to num_values() and writes every block's value into it.
  void FlattenValues(std::vector<float>* values) const;
  // Overwrites every block's value from `values` (the layout of FlattenValues).
  // InvalidArgument, with nothing changed, if values.size() != num_values().
  absl::Status LoadValues(absl::Span<const float> values);
  // Resizes *grads to num_values() and writes every block's gradient into it.
  void FlattenGrads(std::vector<float>* grads) const;
  // Sets every gradient to zero; call before each batch's Backward passes.
  void ZeroGrads();

  // Whether the layers built on this set run a training or an inference pass
  // (worker/nn/forward_mode.h); layers keep the pointer. Default: inference.
  ForwardMode& forward_mode() { return forward_mode_; }
  const ForwardMode& forward_mode() const { return forward_mode_; }

 private:
  std::vector<std::unique_ptr<ParamBlock>> blocks_;
  int64_t num_values_ = 0;
  ForwardMode forward_mode_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_PARAMETER_SET_H_
