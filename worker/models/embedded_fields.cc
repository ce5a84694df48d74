#include "worker/models/embedded_fields.h"

#include "worker/models/model_config.h"
#include "worker/nn/embedding_pooling.h"

namespace granary {
namespace {

nn::MultiValuedField AsField(const SlotRows& rows) {
  return nn::MultiValuedField{rows.offsets, rows.row_ids, {}};
}

// Appends to *out the rows of a list column, CSR over samples: sample b's keys are
// keys[offsets[b], offsets[b + 1]).
void AddListRows(const std::vector<uint32_t>& offsets, const std::vector<uint64_t>& keys,
                 int batch_size, ModelInput* input, SlotRows* out) {
  for (int b = 0; b < batch_size; ++b) {
    for (uint32_t i = offsets[b]; i < offsets[b + 1]; ++i) {
      out->row_ids.push_back(input->RowOf(keys[i]));
    }
    out->offsets.push_back(static_cast<int32_t>(out->row_ids.size()));
  }
}

}  // namespace

absl::StatusOr<EmbeddedFields> EmbeddedFields::Create(
    const google::protobuf::RepeatedPtrField<std::string>& columns,
    const proto::DatasetConfig& dataset) {
  EmbeddedFields fields;
  for (const std::string& name : columns) {
    absl::StatusOr<const proto::ColumnConfig*> column =
        ColumnFor(dataset, name, ColumnUse::kPooled);
    if (!column.ok()) return column.status();
    switch ((*column)->role()) {
      case proto::ColumnConfig::CATEGORICAL:
        fields.slots_.push_back({Kind::kCategorical, name, ""});
        break;
      case proto::ColumnConfig::MULTI_CATEGORICAL:
        fields.slots_.push_back({Kind::kMultiCategorical, name, ""});
        break;
      default:  // a SEQUENCE with >= 1 CATEGORICAL step field (ColumnUse::kPooled)
        for (const proto::StepFieldConfig& step : (*column)->step_fields()) {
          if (step.kind() != proto::StepFieldConfig::CATEGORICAL) continue;
          fields.slots_.push_back({Kind::kSequenceStep, name, step.name()});
        }
        break;
    }
  }
  return fields;
}

absl::Status EmbeddedFields::Prepare(const Batch& batch, ModelInput* input,
                                     std::vector<SlotRows>* rows) const {
  rows->resize(slots_.size());
  for (size_t s = 0; s < slots_.size(); ++s) {
    const Slot& slot = slots_[s];
    SlotRows& out = (*rows)[s];
    out.offsets.assign(1, 0);
    out.row_ids.clear();
    switch (slot.kind) {
      case Kind::kCategorical: {
        absl::StatusOr<const CategoricalColumn*> found =
            ColumnNamed(batch.categoricals, slot.column, "CATEGORICAL");
        if (!found.ok()) return found.status();
        const CategoricalColumn& column = **found;
        for (int b = 0; b < batch.size; ++b) {
          if (column.present[b]) out.row_ids.push_back(input->RowOf(column.keys[b]));
          out.offsets.push_back(static_cast<int32_t>(out.row_ids.size()));
        }
        break;
      }
      case Kind::kMultiCategorical: {
        absl::StatusOr<const MultiCategoricalColumn*> column =
            ColumnNamed(batch.multi_categoricals, slot.column, "MULTI_CATEGORICAL");
        if (!column.ok()) return column.status();
        AddListRows((*column)->offsets, (*column)->keys, batch.size, input, &out);
        break;
      }
      case Kind::kSequenceStep: {
        absl::StatusOr<const SequenceColumn*> sequence =
            ColumnNamed(batch.sequences, slot.column, "SEQUENCE");
        if (!sequence.ok()) return sequence.status();
        absl::StatusOr<const SequenceField*> field = StepFieldNamed(**sequence, slot.step_field);
        if (!field.ok()) return field.status();
        AddListRows((*sequence)->offsets, (*field)->keys, batch.size, input, &out);
        break;
      }
    }
  }
  return absl::OkStatus();
}

void EmbeddedFields::Pool(nn::ConstMatrixRef rows, const std::vector<SlotRows>& slot_rows,
                          nn::MatrixRef pooled) const {
  const Eigen::Index dim = rows.cols();
  for (size_t s = 0; s < slots_.size(); ++s) {
    nn::PoolEmbeddings(rows, AsField(slot_rows[s]), nn::Pooling::kMean,
                       pooled.middleCols(static_cast<Eigen::Index>(s) * dim, dim));
  }
}

void EmbeddedFields::PoolBackward(nn::ConstMatrixRef d_pooled,
                                  const std::vector<SlotRows>& slot_rows,
                                  nn::MatrixRef d_rows) const {
  const Eigen::Index dim = d_rows.cols();
  for (size_t s = 0; s < slots_.size(); ++s) {
    nn::PoolEmbeddingsBackward(d_pooled.middleCols(static_cast<Eigen::Index>(s) * dim, dim),
                               AsField(slot_rows[s]), nn::Pooling::kMean, d_rows);
  }
}

}  // namespace granary
