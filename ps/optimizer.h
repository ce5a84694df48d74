// Optimizer: the update rule a server applies to an embedding row when a gradient is pushed
// (SGD, Adagrad, Adam or FTRL-Proximal, chosen per table by proto::OptimizerConfig).
//
// A row is a RowLayout record: its values, num_slots() floats of optimizer state per
// dimension (slot s of dimension d at slots[s * dim + d]) and its RowMeta. The optimizer
// reads and writes only values, slots and meta->step; every other metadata field (counts,
// days, versions) is the caller's to maintain.
//
// Values are always finite: an update that would make any of a row's values or slots ±Inf or
// NaN (a non-finite gradient, or a huge finite one that overflows Adagrad's accumulator or
// Adam's v) leaves the whole row, meta->step included, as it was, and Apply counts it. With
// gradient clipping (TableConfig.clip_gradient_abs) each gradient element is first clamped to
// [-clip, clip].
//
// L2 (TableConfig.l2): each update adds l2 * w to the (clipped) gradient before the rule
// applies it, the gradient of (l2 / 2) |w|^2, so every optimizer minimizes the penalized loss
// (coupled L2, as Adam's weight_decay in PyTorch, not AdamW's decoupled decay). It is lazy: a
// row is penalized only when a push touches it, once per push, with the row's values as
// stored before that push. A row no push touches keeps its values; a row pushed often shrinks
// more often than a rare one. Untouched rows are never caught up later.
//
// Weight decay (TableConfig.weight_decay, Adam only): AdamW's decoupled decay (Loshchilov &
// Hutter, ICLR 2019), w -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w), with w as
// stored before the push: the decay is not divided by sqrt(v_hat) as l2's gradient term is, so
// every weight shrinks by the same fraction lr * weight_decay per update whatever its gradient
// history. Lazy as L2: once per push that touches the row, not once per global step.
//
// Thread-safe: an Optimizer is immutable after construction, so one instance may serve any
// number of threads at once. The rows it updates are the caller's: the caller must ensure
// that no other thread reads or writes a row while Apply or InitSlots works on it.
#ifndef GRANARY_PS_OPTIMIZER_H_
#define GRANARY_PS_OPTIMIZER_H_

#include <cstddef>
#include <limits>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/proto/config.pb.h"
#include "ps/row_layout.h"

namespace granary {

// One gradient for one row. The pointers belong to the caller and stay valid for the call.
struct RowUpdate {
  float* values;      // dim floats
  float* slots;       // num_slots() * dim floats; may be null when num_slots() is 0
  RowMeta* meta;      // meta->step is advanced by optimizers that count steps (Adam)
  const float* grad;  // dim floats; must not overlap values or slots
};

// The update rule of one table. Immutable, so thread-safe; rows are the caller's to guard.
class Optimizer {
 public:
  Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  virtual ~Optimizer() = default;

  // Float slots per dimension a row keeps: SGD 0, Adagrad 1 (accumulator), Adam 2 (m, v),
  // FTRL 2 (z, n). A table's RowLayout is RowLayout(dim, num_slots()).
  virtual int num_slots() const = 0;

  // Writes the num_slots() * dim slots of a new row whose initial values are `values`, so
  // that the first Apply continues from those values. Adagrad's accumulator starts at
  // initial_accumulator; Adam's m and v at 0. FTRL starts with n = 0 and the z whose weight
  // is `values` (to float precision; see ps/optimizer.cc) rather than the paper's z = 0,
  // which encodes weight 0: the first update would then land near 0 however small its
  // gradient. Does nothing when num_slots() is 0.
  virtual void InitSlots(const float* values, float* slots, int dim) const = 0;

  // Applies each update's gradient (clipped, if the optimizer clips) to its row, in order: two
  // updates of the same row in one batch are applied one after the other. Writes the row's
  // values and slots, and increments meta->step (saturating) where the rule uses a step count:
  // Adam's bias correction counts the row's own updates, not global batches. Returns how many
  // updates were refused because they would have stored a non-finite value or slot; those
  // rows are left unchanged. Allocates nothing.
  // REQUIRES: each row's slots were written by InitSlots (or a previous Apply) of an optimizer
  // built from the same config, and dim is the row's dim.
  virtual size_t Apply(absl::Span<const RowUpdate> updates, int dim) const = 0;
};

// The clip bound of an optimizer that does not clip gradients.
inline constexpr float kNoClipping = std::numeric_limits<float>::infinity();

// What a table does to each pushed gradient element g of a row with values w before its
// optimizer's rule: g' = clamp(g, -clip, clip) + l2 * w. The defaults change nothing.
struct GradientTerms {
  float clip = kNoClipping;  // > 0
  float l2 = 0.0f;           // >= 0
};

// Returns the optimizer `config` selects, with each unset optional field at the default
// documented in config.proto, which turns each gradient element into g' (GradientTerms)
// before applying it and, with weight_decay > 0, decays each updated row as AdamW does.
// InvalidArgument if `config` selects no optimizer, or if weight_decay > 0 and it is not Adam.
// REQUIRES: the numeric fields satisfy ValidateClusterConfig (common/config.h), e.g. Adam's
// betas in [0, 1) and positive learning rates; terms.clip > 0; terms.l2 >= 0;
// weight_decay >= 0 with learning_rate * weight_decay < 1.
absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const proto::OptimizerConfig& config,
                                                         const GradientTerms& terms = {},
                                                         float weight_decay = 0.0f);

// MakeOptimizer of a table's optimizer with its clip_gradient_abs (kNoClipping if unset), l2
// and weight_decay (0 if unset); the error names the table.
absl::StatusOr<std::unique_ptr<Optimizer>> MakeTableOptimizer(const proto::TableConfig& config);

}  // namespace granary

#endif  // GRANARY_PS_OPTIMIZER_H_
