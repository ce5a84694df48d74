#include "worker/batch_parser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/feature_key.h"

namespace granary {
namespace {

// Longest excerpt of a cell quoted in a bad-line reason.
constexpr size_t kMaxQuotedChars = 40;

// This abseil build has its own string_view type, distinct from std::string_view.
absl::string_view Absl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

// Splits `text` at every `separator` into *parts (reusing its capacity).
void SplitInto(std::string_view text, char separator, std::vector<std::string_view>* parts) {
  parts->clear();
  size_t start = 0;
  while (true) {
    size_t at = text.find(separator, start);
    if (at == std::string_view::npos) {
      parts->push_back(text.substr(start));
      return;
    }
    parts->push_back(text.substr(start, at - start));
    start = at + 1;
  }
}

std::string Quote(std::string_view text) {
  if (text.size() <= kMaxQuotedChars) return absl::StrCat("'", Absl(text), "'");
  return absl::StrCat("'", Absl(text.substr(0, kMaxQuotedChars)), "...'");
}

bool ParseFinite(std::string_view text, float* value) {
  return absl::SimpleAtof(Absl(text), value) && std::isfinite(*value);
}

// Parses a finite float of absolute value <= max_abs into *value, or says why not.
bool ParseBounded(std::string_view text, double max_abs, float* value, std::string* reason) {
  if (!ParseFinite(text, value)) {
    *reason = absl::StrCat(Quote(text), " is not a finite number");
    return false;
  }
  if (std::fabs(*value) > max_abs) {
    *reason = absl::StrCat(*value, " exceeds max_abs_numeric ", max_abs);
    return false;
  }
  return true;
}

// A LABEL column's domain, compiled: the most restrictive LabelDomain of the column.
struct LabelPlan {
  uint32_t num_classes = 0;  // 0: any finite float
  std::string task;
};

bool IsClassId(float value, uint32_t num_classes) {
  return value >= 0 && value < static_cast<float>(num_classes) && value == std::floor(value);
}

// Appends a finite float (empty = missing) of absolute value <= max_abs, and for a label with
// a domain a class id in it.
bool AppendFloat(std::string_view text, double max_abs, const LabelPlan* label, FloatColumn* column,
                 std::string* reason) {
  float value = 0;
  if (!text.empty() && !ParseBounded(text, max_abs, &value, reason)) return false;
  if (!text.empty() && label != nullptr && label->num_classes > 0 &&
      !IsClassId(value, label->num_classes)) {
    *reason = absl::StrCat(Quote(text), " is not a class id in 0..", label->num_classes - 1,
                           " (task '", label->task, "')");
    return false;
  }
  column->values.push_back(value);
  column->present.push_back(text.empty() ? 0 : 1);
  return true;
}

// A NUMERIC column's transform (common/proto/dataset.proto NumericTransform), compiled.
struct NumericPlan {
  bool log1p = false;
  bool standardize = false;
  double mean = 0;
  double inverse_stddev = 1;
  bool clip = false;
  double clip_abs = 0;
  bool min_max = false;
  double min = 0;
  double inverse_range = 1;
};

// Transforms the value the last AppendFloat appended to *column (if it was present), or says
// why it cannot: log1p of a negative value.
bool TransformLast(const NumericPlan& plan, FloatColumn* column, std::string* reason) {
  if (!column->present.back()) return true;
  double value = column->values.back();
  if (plan.log1p) {
    if (value < 0) {
      *reason = absl::StrCat(value, " is negative; transform log1p needs a value >= 0");
      return false;
    }
    value = std::log1p(value);
  }
  if (plan.standardize) value = (value - plan.mean) * plan.inverse_stddev;
  if (plan.clip) value = std::clamp(value, -plan.clip_abs, plan.clip_abs);
  if (plan.min_max) value = std::clamp((value - plan.min) * plan.inverse_range, 0.0, 1.0);
  column->values.back() = static_cast<float>(value);
  return true;
}

void AppendCategorical(std::string_view text, uint64_t seed, CategoricalColumn* column) {
  column->keys.push_back(text.empty() ? 0 : FeatureKey(seed, text));
  column->present.push_back(text.empty() ? 0 : 1);
}

bool AppendMultiCategorical(std::string_view text, uint64_t seed, MultiCategoricalColumn* column,
                            std::string* reason) {
  if (!text.empty()) {
    size_t start = 0;
    while (true) {
      size_t at = std::min(text.find(',', start), text.size());
      if (at == start) {
        *reason = absl::StrCat("empty token in ", Quote(text));
        return false;
      }
      column->keys.push_back(FeatureKey(seed, text.substr(start, at - start)));
      if (at == text.size()) break;
      start = at + 1;
    }
  }
  column->offsets.push_back(static_cast<uint32_t>(column->keys.size()));
  return true;
}

// Drops whatever a failed line appended after the batch's first `batch->size` samples.
void Rollback(Batch* batch) {
  const size_t n = batch->size;
  auto truncate_floats = [n](std::vector<FloatColumn>& columns) {
    for (FloatColumn& column : columns) {
      column.values.resize(n);
      column.present.resize(n);
    }
  };
  truncate_floats(batch->labels);
  truncate_floats(batch->numerics);
  for (CategoricalColumn& column : batch->categoricals) {
    column.keys.resize(n);
    column.present.resize(n);
  }
  for (MultiCategoricalColumn& column : batch->multi_categoricals) {
    column.offsets.resize(n + 1);
    column.keys.resize(column.offsets[n]);
  }
  for (SequenceColumn& column : batch->sequences) {
    column.offsets.resize(n + 1);
    for (SequenceField& field : column.fields) {
      field.keys.resize(field.kind == proto::StepFieldConfig::CATEGORICAL ? column.offsets[n] : 0);
      field.values.resize(field.kind == proto::StepFieldConfig::NUMERIC ? column.offsets[n] : 0);
    }
  }
}

// A SEQUENCE column's step fields, compiled.
struct SequencePlan {
  std::vector<uint64_t> seeds;   // per step field; 0 for NUMERIC fields
  std::vector<uint8_t> numeric;  // per step field
  uint32_t max_steps = 0;        // the most recent steps kept (max_sequence_length)
  uint32_t max_cell_steps = 0;   // more steps make the line bad (max_sequence_steps)
};

// The steps of a SEQUENCE cell, counting no further than `limit` + 1.
uint32_t CountSteps(std::string_view text, uint32_t limit) {
  if (text.empty()) return 0;
  uint32_t steps = 1;
  for (size_t at = text.find(';'); at != std::string_view::npos && steps <= limit;
       at = text.find(';', at + 1)) {
    ++steps;
  }
  return steps;
}

// Parses every step (a malformed step makes the line bad even if it would be cut), but
// appends only the plan.max_steps most recent ones. A cell of more than plan.max_cell_steps
// steps is not parsed at all.
bool AppendSequence(std::string_view text, const SequencePlan& plan, double max_abs,
                    SequenceColumn* column, std::string* reason) {
  const size_t num_fields = plan.seeds.size();
  const uint32_t num_steps = CountSteps(text, plan.max_cell_steps);
  if (num_steps > plan.max_cell_steps) {
    *reason = absl::StrCat("more than max_sequence_steps ", plan.max_cell_steps, " steps");
    return false;
  }
  const uint32_t skip = num_steps > plan.max_steps ? num_steps - plan.max_steps : 0;
  size_t start = 0;
  for (uint32_t step = 0; step < num_steps; ++step) {
    size_t step_end = std::min(text.find(';', start), text.size());
    std::string_view step_text = text.substr(start, step_end - start);
    start = step_end + 1;
    size_t field_start = 0;
    size_t f = 0;
    for (;; ++f) {
      size_t field_end = std::min(step_text.find(',', field_start), step_text.size());
      if (f < num_fields) {
        std::string_view field = step_text.substr(field_start, field_end - field_start);
        SequenceField& out = column->fields[f];
        if (field.empty()) {
          *reason = absl::StrCat("step ", step + 1, " field '", out.name, "' is empty");
          return false;
        }
        if (plan.numeric[f]) {
          float value = 0;
          if (!ParseBounded(field, max_abs, &value, reason)) {
            *reason = absl::StrCat("step ", step + 1, " field '", out.name, "': ", *reason);
            return false;
          }
          if (step >= skip) out.values.push_back(value);
        } else if (step >= skip) {
          out.keys.push_back(FeatureKey(plan.seeds[f], field));
        }
      }
      if (field_end == step_text.size()) break;
      field_start = field_end + 1;
    }
    if (f + 1 != num_fields) {
      *reason = absl::StrCat("step ", step + 1, " ", Quote(step_text), " has ", f + 1,
                             " fields, expected ", num_fields);
      return false;
    }
  }
  column->offsets.push_back(column->offsets.back() + (num_steps - skip));
  return true;
}

}  // namespace

std::string ColumnHashSpace(const proto::ColumnConfig& column) {
  return column.hash_space().empty() ? column.name() : column.hash_space();
}

std::string StepFieldHashSpace(const proto::ColumnConfig& column,
                               const proto::StepFieldConfig& step_field) {
  return step_field.hash_space().empty() ? absl::StrCat(column.name(), ".", step_field.name())
                                         : step_field.hash_space();
}

// The DatasetConfig compiled: the batch layout, each column's place in it and its seeds.
struct BatchParser::Plan {
  Plan(const proto::DatasetConfig& config, int batch_size,
       const std::vector<LabelDomain>& label_domains)
      : batch_size(batch_size),
        max_abs_numeric(config.has_max_abs_numeric() ? config.max_abs_numeric()
                                                     : kDefaultMaxAbsNumeric) {
    for (int i = 0; i < config.columns_size(); ++i) {
      const proto::ColumnConfig& column = config.columns(i);
      Layout::Cell cell{column.role(), -1};
      switch (column.role()) {
        case proto::ColumnConfig::LABEL:
          cell.index = static_cast<int>(empty.labels.size());
          empty.labels.push_back({column.name(), {}, {}});
          labels.emplace_back();
          for (const LabelDomain& domain : label_domains) {
            LabelPlan& label = labels.back();
            if (domain.column == column.name() &&
                (label.num_classes == 0 || domain.num_classes < label.num_classes)) {
              label = {domain.num_classes, domain.task};
            }
          }
          break;
        case proto::ColumnConfig::NUMERIC: {
          cell.index = static_cast<int>(empty.numerics.size());
          empty.numerics.push_back({column.name(), {}, {}});
          const proto::NumericTransform& transform = column.transform();
          NumericPlan& plan = numeric_plans.emplace_back();
          plan.log1p = transform.log1p();
          plan.standardize = transform.has_stddev();
          plan.mean = transform.mean();
          plan.inverse_stddev = plan.standardize ? 1.0 / transform.stddev() : 1.0;
          plan.clip = transform.has_clip();
          plan.clip_abs = transform.clip();
          plan.min_max = transform.has_min();
          plan.min = transform.min();
          plan.inverse_range = plan.min_max ? 1.0 / (transform.max() - transform.min()) : 1.0;
          break;
        }
        case proto::ColumnConfig::CATEGORICAL:
          cell.index = static_cast<int>(empty.categoricals.size());
          empty.categoricals.push_back({column.name(), {}, {}});
          categorical_seeds.push_back(FieldSeed(ColumnHashSpace(column)));
          break;
        case proto::ColumnConfig::MULTI_CATEGORICAL:
          cell.index = static_cast<int>(empty.multi_categoricals.size());
          empty.multi_categoricals.push_back({column.name(), {}, {}});
          multi_seeds.push_back(FieldSeed(ColumnHashSpace(column)));
          break;
        case proto::ColumnConfig::SEQUENCE: {
          cell.index = static_cast<int>(empty.sequences.size());
          SequenceColumn& sequence = empty.sequences.emplace_back();
          sequence.name = column.name();
          SequencePlan& plan = sequences.emplace_back();
          plan.max_steps = column.has_max_sequence_length() ? column.max_sequence_length()
                                                            : kDefaultMaxSequenceLength;
          plan.max_cell_steps = column.has_max_sequence_steps() ? column.max_sequence_steps()
                                                                : kDefaultMaxSequenceSteps;
          for (const proto::StepFieldConfig& step_field : column.step_fields()) {
            SequenceField& field = sequence.fields.emplace_back();
            field.name = step_field.name();
            field.kind = step_field.kind();
            plan.numeric.push_back(step_field.kind() == proto::StepFieldConfig::NUMERIC);
            plan.seeds.push_back(
                plan.numeric.back() ? 0 : FieldSeed(StepFieldHashSpace(column, step_field)));
          }
          break;
        }
        default:
          break;
      }
      columns.emplace(column.name(), cell);
    }
  }

  const int batch_size;
  const double max_abs_numeric;
  Batch empty;                                             // named columns, no samples
  absl::flat_hash_map<std::string, Layout::Cell> columns;  // by column name
  std::vector<uint64_t> categorical_seeds;                 // by Batch::categoricals index
  std::vector<uint64_t> multi_seeds;                       // by Batch::multi_categoricals index
  std::vector<SequencePlan> sequences;                     // by Batch::sequences index
  std::vector<LabelPlan> labels;                           // by Batch::labels index
  std::vector<NumericPlan> numeric_plans;                  // by Batch::numerics index
};

absl::Status BatchParser::CheckLabelDomains(const proto::DatasetConfig& config,
                                            const std::vector<LabelDomain>& label_domains) {
  for (const LabelDomain& domain : label_domains) {
    const auto column =
        std::find_if(config.columns().begin(), config.columns().end(),
                     [&](const proto::ColumnConfig& c) { return c.name() == domain.column; });
    if (column == config.columns().end() || column->role() != proto::ColumnConfig::LABEL) {
      return absl::InvalidArgumentError(
          absl::StrCat("task '", domain.task, "': label column '", domain.column,
                       "' is not a LABEL column of the dataset config"));
    }
    if (domain.num_classes < 2) {
      return absl::InvalidArgumentError(absl::StrCat("task '", domain.task, "': label domain of ",
                                                     domain.num_classes, " classes (needs >= 2)"));
    }
  }
  return absl::OkStatus();
}

BatchParser::BatchParser(const proto::DatasetConfig& config, int batch_size,
                         const std::vector<LabelDomain>& label_domains)
    : plan_(std::make_unique<const Plan>(config, batch_size, label_domains)) {}

BatchParser::~BatchParser() = default;

Batch BatchParser::NewBatch() const {
  const size_t batch_size = plan_->batch_size;
  Batch batch = plan_->empty;
  for (auto* floats : {&batch.labels, &batch.numerics}) {
    for (FloatColumn& column : *floats) {
      column.values.reserve(batch_size);
      column.present.reserve(batch_size);
    }
  }
  for (CategoricalColumn& column : batch.categoricals) {
    column.keys.reserve(batch_size);
    column.present.reserve(batch_size);
  }
  for (MultiCategoricalColumn& column : batch.multi_categoricals) {
    column.offsets.reserve(batch_size + 1);
    column.offsets.push_back(0);
  }
  for (SequenceColumn& column : batch.sequences) {
    column.offsets.reserve(batch_size + 1);
    column.offsets.push_back(0);
  }
  return batch;
}

absl::StatusOr<BatchParser::Layout> BatchParser::MatchHeader(std::string_view header,
                                                             const std::string& file_name) const {
  std::vector<std::string_view> names;
  SplitInto(header, '\t', &names);
  Layout layout;
  std::vector<Layout::Cell>& cells = layout.cells_;
  std::vector<std::string> unknown;
  absl::flat_hash_set<absl::string_view> seen;
  for (std::string_view name : names) {
    if (!seen.insert(Absl(name)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ":1: header names column '", Absl(name), "' twice"));
    }
    auto it = plan_->columns.find(Absl(name));
    if (it == plan_->columns.end()) {
      unknown.emplace_back(name);
    } else {
      cells.push_back(it->second);
    }
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file_name, ":1: header has columns the dataset config does not name: '",
        absl::StrJoin(unknown, "', '"), "' (configure them, as IGNORED to skip them)"));
  }
  std::vector<std::string> missing;
  for (const auto& [name, cell] : plan_->columns) {
    if (!seen.contains(name)) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::sort(missing.begin(), missing.end());
    return absl::InvalidArgumentError(absl::StrCat(file_name, ":1: header lacks configured column",
                                                   missing.size() > 1 ? "s" : "", " '",
                                                   absl::StrJoin(missing, "', '"), "'"));
  }
  return layout;
}

bool BatchParser::ParseLine(std::string_view line, Layout* layout, Batch* batch,
                            std::string* reason) const {
  const Plan& plan = *plan_;
  const std::vector<Layout::Cell>& cells = layout->cells_;
  std::vector<std::string_view>* split = &layout->split_;
  SplitInto(line, '\t', split);
  if (split->size() != cells.size()) {
    *reason = line.empty() ? std::string("empty line")
                           : absl::StrCat("expected ", cells.size(), " tab-separated cells, found ",
                                          split->size());
    return false;
  }
  for (size_t i = 0; i < cells.size(); ++i) {
    const std::string_view text = (*split)[i];
    const int index = cells[i].index;
    bool ok = true;
    const std::string* name = nullptr;
    switch (cells[i].role) {
      case proto::ColumnConfig::LABEL:
        ok = AppendFloat(text, std::numeric_limits<double>::infinity(), &plan.labels[index],
                         &batch->labels[index], reason);
        name = &batch->labels[index].name;
        break;
      case proto::ColumnConfig::NUMERIC:
        ok = AppendFloat(text, plan.max_abs_numeric, nullptr, &batch->numerics[index], reason) &&
             TransformLast(plan.numeric_plans[index], &batch->numerics[index], reason);
        name = &batch->numerics[index].name;
        break;
      case proto::ColumnConfig::CATEGORICAL:
        AppendCategorical(text, plan.categorical_seeds[index], &batch->categoricals[index]);
        break;
      case proto::ColumnConfig::MULTI_CATEGORICAL:
        ok = AppendMultiCategorical(text, plan.multi_seeds[index],
                                    &batch->multi_categoricals[index], reason);
        name = &batch->multi_categoricals[index].name;
        break;
      case proto::ColumnConfig::SEQUENCE:
        ok = AppendSequence(text, plan.sequences[index], plan.max_abs_numeric,
                            &batch->sequences[index], reason);
        name = &batch->sequences[index].name;
        break;
      default:
        break;
    }
    if (!ok) {
      *reason = absl::StrCat("column '", *name, "': ", *reason);
      Rollback(batch);
      return false;
    }
  }
  ++batch->size;
  return true;
}

}  // namespace granary
