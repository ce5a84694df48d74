// Batch: a batch of samples in columnar form, as the Reader (worker/reader.h) fills it through
// its BatchParser (worker/batch_parser.h) and the models (worker/models/) read it. A plain
// value type: thread-compatible.
#ifndef GRANARY_WORKER_BATCH_H_
#define GRANARY_WORKER_BATCH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/proto/dataset.pb.h"

namespace granary {

// Columns of a batch of n samples. Each holds the column's `name` from the config. Sample i
// of a batch is the same input line in every column.

// A LABEL or NUMERIC column.
struct FloatColumn {
  std::string name;
  std::vector<float> values;     // [n]; 0 where the cell was empty
  std::vector<uint8_t> present;  // [n]; 1 = a value, 0 = the cell was empty (missing)
};

struct CategoricalColumn {
  std::string name;
  std::vector<uint64_t> keys;    // [n]; 0 where the cell was empty (not a key: check present)
  std::vector<uint8_t> present;  // [n]; 1 = a key, 0 = the cell was empty (missing)
};

// CSR: the keys of sample i are keys[offsets[i], offsets[i + 1]), in the order of the cell.
struct MultiCategoricalColumn {
  std::string name;
  std::vector<uint32_t> offsets;  // [n + 1]; offsets[0] = 0
  std::vector<uint64_t> keys;     // [offsets[n]]
};

// One step field of a SequenceColumn: one entry per step of the batch, in the column's step
// order. Exactly one of keys and values is filled, by kind.
struct SequenceField {
  std::string name;
  proto::StepFieldConfig::Kind kind = proto::StepFieldConfig::KIND_UNSPECIFIED;
  std::vector<uint64_t> keys;  // CATEGORICAL: [offsets[n]]
  std::vector<float> values;   // NUMERIC: [offsets[n]]
};

// CSR over steps: the steps of sample i are [offsets[i], offsets[i + 1]) in every field,
// oldest first (the last step of a sample is its most recent), already cut to the column's
// max_sequence_length most recent steps. A sample without steps has offsets[i] = offsets[i+1].
struct SequenceColumn {
  std::string name;
  std::vector<uint32_t> offsets;      // [n + 1]; offsets[0] = 0
  std::vector<SequenceField> fields;  // in the config's step_fields order

  uint32_t Length(int sample) const { return offsets[sample + 1] - offsets[sample]; }
};

// Up to ReaderOptions::batch_size samples. Each vector of columns holds the config's columns of
// that role in config order (IGNORED columns appear nowhere); FindColumn finds one by name,
// ColumnNamed and StepFieldNamed find one a model needs.
struct Batch {
  int size = 0;  // n, the number of samples
  // Data lines of the Reader's input consumed up to this batch's end (good and bad lines,
  // and lines skipped by InputSlice::skip_lines, from the input's first data line): where
  // reading resumes to train only the batches after this one.
  uint64_t lines_consumed = 0;
  std::vector<FloatColumn> labels;
  std::vector<FloatColumn> numerics;
  std::vector<CategoricalColumn> categoricals;
  std::vector<MultiCategoricalColumn> multi_categoricals;
  std::vector<SequenceColumn> sequences;
};

// Index of the column named `name` in one of Batch's column vectors (or SequenceColumn::fields),
// or -1.
template <typename Column>
int FindColumn(const std::vector<Column>& columns, std::string_view name) {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// The column named `name` in `columns`, the Batch's columns of the role `role` as the dataset
// config spells it ("CATEGORICAL", "SEQUENCE", ...). InvalidArgument "batch has no <role> column
// '<name>'" when there is none: the batch was parsed with another dataset config than the model
// was built for.
template <typename Column>
absl::StatusOr<const Column*> ColumnNamed(const std::vector<Column>& columns,
                                          const std::string& name, absl::string_view role) {
  const int index = FindColumn(columns, name);
  if (index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("batch has no ", role, " column '", name, "'"));
  }
  return &columns[index];
}

// The step field named `name` of `sequence`, or InvalidArgument "sequence '<sequence's name>'
// has no step field '<name>'", as ColumnNamed.
inline absl::StatusOr<const SequenceField*> StepFieldNamed(const SequenceColumn& sequence,
                                                           const std::string& name) {
  const int index = FindColumn(sequence.fields, name);
  if (index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence '", sequence.name, "' has no step field '", name, "'"));
  }
  return &sequence.fields[index];
}

}  // namespace granary

#endif  // GRANARY_WORKER_BATCH_H_
