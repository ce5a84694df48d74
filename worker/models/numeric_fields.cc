#include "worker/models/numeric_fields.h"

#include "worker/models/model_config.h"

namespace granary {

absl::StatusOr<NumericFields> NumericFields::Create(
    const google::protobuf::RepeatedPtrField<std::string>& columns,
    const proto::DatasetConfig& dataset) {
  NumericFields fields;
  for (const std::string& name : columns) {
    absl::StatusOr<const proto::ColumnConfig*> column =
        ColumnFor(dataset, name, ColumnUse::kNumeric);
    if (!column.ok()) return column.status();
    fields.columns_.push_back(name);
  }
  return fields;
}

absl::Status NumericFields::Prepare(const Batch& batch, nn::Matrix* values) const {
  values->resize(batch.size, num_fields());
  for (int j = 0; j < num_fields(); ++j) {
    absl::StatusOr<const FloatColumn*> found = ColumnNamed(batch.numerics, columns_[j], "NUMERIC");
    if (!found.ok()) return found.status();
    const FloatColumn& column = **found;
    for (int b = 0; b < batch.size; ++b) (*values)(b, j) = column.present[b] ? column.values[b] : 0;
  }
  return absl::OkStatus();
}

}  // namespace granary
