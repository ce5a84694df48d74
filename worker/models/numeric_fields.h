// NumericFields: a list of a model's NUMERIC input columns (e.g. counts and means of earlier
// ratings), copied side by side into one [B, num_fields] matrix that the model concatenates to
// its embedded inputs. A missing (empty) cell reads as 0, so a column's 0 should be its neutral
// value (the converter writes centred means and log counts).
//
// Thread-compatible: Create and Prepare are const functions of their arguments.
#ifndef GRANARY_WORKER_MODELS_NUMERIC_FIELDS_H_
#define GRANARY_WORKER_MODELS_NUMERIC_FIELDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "worker/batch.h"
#include "worker/nn/tensor.h"

namespace granary {

class NumericFields {
 public:
  // The NUMERIC columns named `columns` of `dataset` (possibly none). InvalidArgument naming a
  // column that does not exist or is not NUMERIC.
  static absl::StatusOr<NumericFields> Create(
      const google::protobuf::RepeatedPtrField<std::string>& columns,
      const proto::DatasetConfig& dataset);

  int num_fields() const { return static_cast<int>(columns_.size()); }

  // Sets *values to [batch.size, num_fields()]: column j of `batch`'s numerics in column j, 0
  // where a cell is missing. InvalidArgument naming a column the batch lacks.
  absl::Status Prepare(const Batch& batch, nn::Matrix* values) const;

 private:
  std::vector<std::string> columns_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_NUMERIC_FIELDS_H_
