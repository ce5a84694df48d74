// EmbeddedFields: a list of a model's sparse input fields, each embedded from the pulled rows
// and mean-pooled into one slot of embedding_dim floats; the slots sit side by side in one
// [B, num_slots * dim] matrix, in field order.
//
// A field is a column of the dataset config:
//   CATEGORICAL        one slot: the key's row (zeros when the cell is empty);
//   MULTI_CATEGORICAL  one slot: the mean of the keys' rows (zeros for an empty list);
//   SEQUENCE           one slot per CATEGORICAL step field: the mean of its rows over the
//                      sample's steps (NUMERIC step fields are not embedded).
// Keys are added to the batch's unique keys (ModelInput::RowOf), so fields that share a
// hash_space share rows, and so does a history's item with the target item.
//
// Thread-compatible: Prepare, Pool and PoolBackward are const and write only their outputs.
#ifndef GRANARY_WORKER_MODELS_EMBEDDED_FIELDS_H_
#define GRANARY_WORKER_MODELS_EMBEDDED_FIELDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "worker/batch.h"
#include "worker/models/model.h"
#include "worker/models/numeric_fields.h"
#include "worker/nn/tensor.h"

namespace granary {

// The rows of one slot for a batch, CSR over samples: sample b's rows are
// row_ids[offsets[b], offsets[b + 1]) of the pulled rows.
struct SlotRows {
  std::vector<int32_t> offsets;  // [B + 1]
  std::vector<int32_t> row_ids;
};

// The input of a model that reads embedded fields and numeric columns (PooledFieldsModel):
// the keys and labels, each slot's rows and the numeric values.
struct EmbeddedFieldsInput : ModelInput {
  std::vector<SlotRows> slots;
  nn::Matrix numeric;  // [B, numeric fields] (NumericFields::Prepare)
};

class EmbeddedFields {
 public:
  // The fields named `columns` of `dataset`. InvalidArgument naming a column that does not
  // exist or has another role (LABEL, NUMERIC, IGNORED), or a SEQUENCE column without a
  // CATEGORICAL step field.
  static absl::StatusOr<EmbeddedFields> Create(
      const google::protobuf::RepeatedPtrField<std::string>& columns,
      const proto::DatasetConfig& dataset);

  // Pooled slots: the output width is num_slots() * embedding dim.
  int num_slots() const { return static_cast<int>(slots_.size()); }

  // Fills *rows (num_slots() entries) from `batch`, adding the keys to input->keys.
  // InvalidArgument naming a column or step field the batch lacks.
  absl::Status Prepare(const Batch& batch, ModelInput* input, std::vector<SlotRows>* rows) const;

  // Writes slot s of sample b, the mean of its rows of `rows` [num keys, dim], into
  // pooled(b, s * dim .. (s + 1) * dim). REQUIRES: pooled is [B, num_slots() * dim].
  void Pool(nn::ConstMatrixRef rows, const std::vector<SlotRows>& slot_rows,
            nn::MatrixRef pooled) const;
  // Adds the gradient of Pool's output, d_pooled [B, num_slots() * dim], into d_rows.
  void PoolBackward(nn::ConstMatrixRef d_pooled, const std::vector<SlotRows>& slot_rows,
                    nn::MatrixRef d_rows) const;

 private:
  enum class Kind { kCategorical, kMultiCategorical, kSequenceStep };
  struct Slot {
    Kind kind;
    std::string column;
    std::string step_field;  // kSequenceStep only
  };

  std::vector<Slot> slots_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_EMBEDDED_FIELDS_H_
