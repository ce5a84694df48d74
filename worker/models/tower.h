// Tower: one side of a two-tower model. Embedded fields (worker/models/embedded_fields.h),
// optionally followed by extra dense inputs the model supplies (DAT's augmented vector, ATNN's item
// statistics), go through ReLU layers (each followed, in training passes, by a Dropout when the
// tower has a dropout rate: TowerConfig.dropout) and a final linear layer, and the output is
// L2-normalized, so the dot product of a user and an item vector is their cosine similarity.
//
//   input  = [pooled fields (num_slots * dim) | extra (extra_dim)]       [B, input width]
//   vector = L2Normalize(Dense_out(ReLU MLP(input)))                      [B, widths.back()]
//
// Parameters: "<name>.<i>" for the hidden layers (widths but the last), "<name>.out".
//
// Not thread-safe: the layers keep activations; one thread at a time.
#ifndef GRANARY_WORKER_MODELS_TOWER_H_
#define GRANARY_WORKER_MODELS_TOWER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "worker/models/embedded_fields.h"
#include "worker/nn/dense.h"
#include "worker/nn/l2_normalize.h"
#include "worker/nn/mlp.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

class Tower {
 public:
  // With dropout_rate > 0 each hidden layer's output goes through a Dropout of that rate in
  // the training passes of params->forward_mode() (the output layer never does).
  // REQUIRES: widths has >= 1 entry, each >= 1; dim >= 1; extra_dim >= 0; dropout_rate in
  // [0, 1); *params outlives the tower.
  Tower(nn::ParameterSet* params, const std::string& name, EmbeddedFields fields, int dim,
        int extra_dim, absl::Span<const uint32_t> widths, float dropout_rate);
  Tower(const Tower&) = delete;
  Tower& operator=(const Tower&) = delete;

  const EmbeddedFields& fields() const { return fields_; }
  int output_dim() const { return out_.output_dim(); }
  int extra_dim() const { return extra_dim_; }

  // Returns the normalized vectors [B, output_dim()], valid until the next Forward.
  // REQUIRES: rows is [num keys, dim]; slot_rows from fields().Prepare; extra is
  // [B, extra_dim()] (ignored when extra_dim() == 0).
  const nn::Matrix& Forward(nn::ConstMatrixRef rows, const std::vector<SlotRows>& slot_rows,
                            nn::ConstMatrixRef extra);

  // Given d_vectors for the last Forward, adds the parameter gradients, adds the fields' row
  // gradients into d_rows and returns the gradient w.r.t. extra [B, extra_dim()], valid until
  // the next Backward.
  const nn::Matrix& Backward(const nn::Matrix& d_vectors, const std::vector<SlotRows>& slot_rows,
                             nn::MatrixRef d_rows);

 private:
  const EmbeddedFields fields_;
  const int dim_;
  const int extra_dim_;
  nn::Mlp hidden_;
  nn::Dense out_;
  nn::L2Normalize normalize_;
  nn::Matrix input_;
  nn::Matrix d_extra_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_TOWER_H_
