// BatchParser: turns the lines of the input format (DESIGN.md "Input format",
// common/proto/dataset.proto) into samples of a columnar Batch.
//
//   BatchParser parser(config, batch_size);  // config already validated
//   Batch batch = parser.NewBatch();
//   absl::StatusOr<BatchParser::Layout> layout = parser.MatchHeader(header, "file.tsv");
//   std::string reason;
//   if (!parser.ParseLine(line, &*layout, &batch, &reason)) Report(reason);
//
// The DatasetConfig is compiled once, at construction: each column's place in the Batch and
// the seeds of its hash space. A file's header line then gives the Layout of its lines (the
// columns may come in any order). A line that cannot be parsed leaves the batch as it was and
// says why: wrong number of cells, a LABEL/NUMERIC cell that is not a finite number, a NUMERIC
// cell or step field beyond max_abs_numeric, a LABEL outside its LabelDomain, an empty token in
// a MULTI_CATEGORICAL list, a SEQUENCE cell of more than max_sequence_steps steps (counted
// before any is parsed), a sequence step with the wrong number of fields, an empty or
// non-numeric step field, a negative cell of a NUMERIC column whose transform takes its log1p.
// A NUMERIC column's transform (log1p, standardize, clip) is applied as its cell is parsed.
//
// Thread-safe: const after construction (each thread parses into its own Batch and Layout).
#ifndef GRANARY_WORKER_BATCH_PARSER_H_
#define GRANARY_WORKER_BATCH_PARSER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "worker/batch.h"

namespace granary {

// The hash space of a CATEGORICAL or MULTI_CATEGORICAL column: its hash_space, else its name.
// A token's key is FeatureKey(FieldSeed(hash space), token).
std::string ColumnHashSpace(const proto::ColumnConfig& column);
// The hash space of a CATEGORICAL step field: its hash_space, else "<column>.<step field>".
std::string StepFieldHashSpace(const proto::ColumnConfig& column,
                               const proto::StepFieldConfig& step_field);

// What a LABEL column may hold beyond "a finite float", known from the tasks that read it
// (the dataset config does not know them): the label must be a class id, an integer in
// [0, num_classes). 2 for a BINARY head (0 or 1), num_classes for a MULTICLASS head.
// The num_classes of a BINARY head's LabelDomain: its labels are 0 or 1.
inline constexpr uint32_t kBinaryLabelClasses = 2;

struct LabelDomain {
  std::string column;        // a LABEL column of the dataset config
  uint32_t num_classes = 0;  // >= 2
  std::string task;          // the task that needs it, named in bad-line reasons
};

class BatchParser {
 public:
  // Where each cell of a file's lines goes, in header order, with scratch space for splitting
  // a line. Belongs to one file and one thread.
  class Layout {
   public:
    size_t num_cells() const { return cells_.size(); }

   private:
    friend class BatchParser;
    // Where one cell goes: the column vector of `role` in Batch, at `index`.
    struct Cell {
      proto::ColumnConfig::Role role = proto::ColumnConfig::IGNORED;
      int index = -1;
    };
    std::vector<Cell> cells_;
    std::vector<std::string_view> split_;  // ParseLine's scratch
  };

  // InvalidArgument naming the domain's task if a LabelDomain's column is not a LABEL column of
  // `config` or its num_classes < 2. Two domains of one column both apply.
  static absl::Status CheckLabelDomains(const proto::DatasetConfig& config,
                                        const std::vector<LabelDomain>& label_domains);

  // REQUIRES: `config` passes ValidateDatasetConfig; batch_size >= 1; `label_domains` pass
  // CheckLabelDomains.
  BatchParser(const proto::DatasetConfig& config, int batch_size,
              const std::vector<LabelDomain>& label_domains = {});
  ~BatchParser();
  BatchParser(const BatchParser&) = delete;
  BatchParser& operator=(const BatchParser&) = delete;

  // A fresh batch: a named column for every configured column but the IGNORED ones, no samples,
  // per-sample arrays reserved for batch_size samples.
  Batch NewBatch() const;

  // The Layout of lines under `header` (a file's first line). InvalidArgument naming
  // "<file_name>:1" if a configured column is missing, a header column is unknown to the
  // config, or a column is named twice.
  absl::StatusOr<Layout> MatchHeader(std::string_view header, const std::string& file_name) const;

  // Appends the sample of `line` to *batch and returns true; or leaves *batch as it was, sets
  // *reason ("column 'price': 'x' is not a finite number") and returns false. `layout` from
  // MatchHeader of the line's file; *batch from NewBatch. Appends past batch_size too: taking
  // full batches away is the caller's part.
  bool ParseLine(std::string_view line, Layout* layout, Batch* batch, std::string* reason) const;

 private:
  struct Plan;
  const std::unique_ptr<const Plan> plan_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_BATCH_PARSER_H_
