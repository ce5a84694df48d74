#include "worker/tools/dataset_guess.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config.h"

namespace granary {
namespace {

using Role = proto::ColumnConfig::Role;

// Rule 2: words of a column name that make a numeric column a label.
// "like"/"liked" are not among them: they name features as often (history_liked).
constexpr const char* kLabelWords[] = {"click", "clicked", "clicks",  "purchase",  "purchased",
                                       "buy",   "bought",  "convert", "converted", "conversion",
                                       "label", "target",  "rating",  "class",     "y",
                                       "ctr",   "cvr"};
// Rule 1: words of a column name that make it a point in time.
constexpr const char* kTimeWords[] = {"timestamp", "time", "date", "datetime", "ts"};
// Rule 5: words of a column name that make it an id.
constexpr const char* kIdWords[] = {"id", "uid", "userid", "itemid"};
// Distinct values kept per column; enough to tell rule 6's few categories from many.
constexpr size_t kMaxDistinctTracked = 4096;

bool HasLabelWord(const std::string& name) { return NameHasWord(name, kLabelWords); }
bool HasTimeWord(const std::string& name) { return NameHasWord(name, kTimeWords); }
bool HasIdWord(const std::string& name) { return NameHasWord(name, kIdWords); }

bool ParseNumber(absl::string_view text, double* value) {
  return absl::SimpleAtod(text, value) && std::isfinite(*value);
}

// What the sampled cells of one column look like.
struct ColumnSample {
  size_t present = 0;  // non-empty cells
  bool has_semicolon = false;
  bool has_comma = false;
  bool all_numbers = true;
  bool all_integers = true;
  std::vector<double> numbers;  // when all_numbers
  // Distinct cells and how often each was seen, up to kMaxDistinctTracked distinct ones.
  absl::flat_hash_map<std::string, size_t> tokens;
  std::vector<std::string> sequences;  // cells with ';' or ',' (rule 3)

  void Add(absl::string_view cell) {
    if (cell.empty()) return;
    ++present;
    if (cell.find(';') != absl::string_view::npos) has_semicolon = true;
    if (cell.find(',') != absl::string_view::npos) has_comma = true;
    if (has_semicolon || has_comma) sequences.emplace_back(cell);
    auto it = tokens.find(cell);
    if (it != tokens.end()) {
      ++it->second;
    } else if (tokens.size() < kMaxDistinctTracked) {
      tokens.emplace(cell, 1);
    }
    double value = 0;
    if (all_numbers && ParseNumber(cell, &value)) {
      numbers.push_back(value);
      if (value != std::floor(value)) all_integers = false;
    } else {
      all_numbers = false;
      all_integers = false;
    }
  }
};

struct Moments {
  double mean = 0;
  double stddev = 0;
  double skewness = 0;
};

Moments MomentsOf(const std::vector<double>& values) {
  Moments m;
  if (values.empty()) return m;
  for (double v : values) m.mean += v;
  m.mean /= values.size();
  double second = 0, third = 0;
  for (double v : values) {
    const double d = v - m.mean;
    second += d * d;
    third += d * d * d;
  }
  second /= values.size();
  third /= values.size();
  m.stddev = std::sqrt(second);
  m.skewness = second > 0 ? third / std::pow(second, 1.5) : 0;
  return m;
}

// Rule 2 for a column known to be a label: its task.
TaskGuess LabelTask(const std::string& name, const ColumnSample& sample, std::string* why) {
  TaskGuess task{name, proto::TaskConfig::REGRESSION, 0};
  const auto [low, high] = std::minmax_element(sample.numbers.begin(), sample.numbers.end());
  if (sample.all_integers && *low >= 0 && *high <= 1) {
    task.head = proto::TaskConfig::BINARY;
    *why = "0/1 values: a BINARY task";
  } else if (sample.all_integers && *low >= 0 && *high + 1 <= kMaxGuessedClasses) {
    task.head = proto::TaskConfig::MULTICLASS;
    task.num_classes = static_cast<uint32_t>(*high) + 1;
    *why = absl::StrCat("integers 0..", task.num_classes - 1, ": a MULTICLASS task of ",
                        task.num_classes, " classes");
  } else {
    *why = "numbers: a REGRESSION task";
  }
  return task;
}

// Rule 3: the step fields of a SEQUENCE column. `categorical_tokens` holds the sampled tokens of
// every CATEGORICAL column by name (in header order) for hash-space sharing.
absl::StatusOr<std::vector<proto::StepFieldConfig>> GuessStepFields(
    const std::string& name, const ColumnSample& sample,
    const std::vector<std::pair<std::string, const ColumnSample*>>& categorical_columns,
    std::string* why) {
  std::map<size_t, size_t> field_counts;  // fields per step -> steps
  std::vector<ColumnSample> fields;
  for (const std::string& cell : sample.sequences) {
    for (absl::string_view step : absl::StrSplit(cell, ';')) {
      std::vector<absl::string_view> parts = absl::StrSplit(step, ',');
      ++field_counts[parts.size()];
      if (fields.size() < parts.size()) fields.resize(parts.size());
      for (size_t f = 0; f < parts.size(); ++f) fields[f].Add(parts[f]);
    }
  }
  if (field_counts.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("steps of column '", name, "' have ",
                                                   field_counts.begin()->first, " to ",
                                                   field_counts.rbegin()->first, " fields"));
  }
  std::vector<proto::StepFieldConfig> steps(fields.size());
  std::vector<std::string> parts;
  for (size_t f = 0; f < fields.size(); ++f) {
    proto::StepFieldConfig& step = steps[f];
    step.set_name(absl::StrCat("field", f));
    // Tokens of a CATEGORICAL column first: integer ids are numbers too.
    const std::string* shared = nullptr;
    double best_share = kSharedTokenShare;
    for (const auto& [column, column_sample] : categorical_columns) {
      // Weighted by occurrences: a sample holds the popular tokens of both, not all the rare.
      size_t found = 0;
      size_t total = 0;
      for (const auto& [token, count] : fields[f].tokens) {
        total += count;
        if (column_sample->tokens.contains(token)) found += count;
      }
      const double share = total == 0 ? 0 : static_cast<double>(found) / total;
      if (share >= best_share) {
        best_share = share;
        shared = &column;
      }
    }
    if (shared == nullptr && fields[f].all_numbers && !fields[f].numbers.empty()) {
      step.set_kind(proto::StepFieldConfig::NUMERIC);
      parts.push_back(absl::StrCat(step.name(), " NUMERIC"));
      continue;
    }
    step.set_kind(proto::StepFieldConfig::CATEGORICAL);
    if (shared != nullptr) {
      step.set_name(*shared);
      step.set_hash_space(*shared);
      parts.push_back(absl::StrCat(step.name(), " CATEGORICAL sharing column '", *shared,
                                   "' keys (", static_cast<int>(best_share * 100),
                                   "% of its tokens are there)"));
    } else {
      parts.push_back(absl::StrCat(step.name(), " CATEGORICAL"));
    }
  }
  *why = absl::StrCat("cells with ';': steps of ", fields.size(), " field",
                      fields.size() > 1 ? "s" : "", ": ", absl::StrJoin(parts, ", "));
  return steps;
}

}  // namespace

bool NameHasWord(const std::string& name, absl::Span<const char* const> words) {
  for (absl::string_view word :
       absl::StrSplit(name, absl::ByAnyChar(" _-.:/"), absl::SkipEmpty())) {
    const std::string lower = absl::AsciiStrToLower(word);
    for (const char* candidate : words) {
      if (lower == candidate) return true;
    }
  }
  return false;
}

absl::StatusOr<DatasetGuess> GuessDataset(std::string_view header,
                                          const std::vector<std::string>& lines,
                                          const std::string& file_name,
                                          const DescribeOptions& options) {
  const std::vector<std::string> names =
      absl::StrSplit(absl::string_view(header.data(), header.size()), '\t');
  absl::flat_hash_set<std::string> seen;
  for (const std::string& name : names) {
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ":1: header has an empty name"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ":1: header names column '", name, "' twice"));
    }
  }
  for (const std::string& label : options.label_columns) {
    if (!seen.contains(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ":1: label column '", label, "' is not in the header"));
    }
  }
  std::vector<ColumnSample> samples(names.size());
  size_t used = 0;
  size_t skipped = 0;
  for (const std::string& line : lines) {
    std::vector<absl::string_view> cells = absl::StrSplit(line, '\t');
    if (cells.size() != names.size()) {
      ++skipped;
      continue;
    }
    ++used;
    for (size_t i = 0; i < cells.size(); ++i) samples[i].Add(cells[i]);
  }
  if (used == 0) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": none of the ", lines.size(),
                                                   " sampled lines has the header's ", names.size(),
                                                   " cells"));
  }

  DatasetGuess guess;
  std::vector<std::string> whys(names.size());
  // Rules 3 and 5-8 of the non-sequence columns first: step fields share keys with
  // CATEGORICAL columns, so those must be known.
  std::vector<Role> roles(names.size(), proto::ColumnConfig::ROLE_UNSPECIFIED);
  std::vector<proto::NumericTransform> transforms(names.size());
  std::vector<std::pair<std::string, const ColumnSample*>> categorical_columns;
  double max_abs = 0;
  const absl::flat_hash_set<std::string> listed_labels(options.label_columns.begin(),
                                                       options.label_columns.end());
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const ColumnSample& sample = samples[i];
    const bool listed = listed_labels.contains(name);
    if (listed && !sample.all_numbers) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ": label column '", name,
                                                     "' holds a value that is not a number"));
    }
    if (sample.present == 0) {
      roles[i] = proto::ColumnConfig::IGNORED;
      whys[i] = absl::StrCat("no value in the ", used, " sampled lines");
      continue;
    }
    if (!listed && HasTimeWord(name)) {
      roles[i] = proto::ColumnConfig::IGNORED;
      whys[i] = "named like a time: eval data lies beyond the training times";
      continue;
    }
    if (sample.all_numbers) {
      for (double v : sample.numbers) max_abs = std::max(max_abs, std::fabs(v));
    }
    const bool label =
        options.label_columns.empty() ? HasLabelWord(name) && sample.all_numbers : listed;
    if (label) {
      roles[i] = proto::ColumnConfig::LABEL;
      std::string task_why;
      guess.tasks.push_back(LabelTask(name, sample, &task_why));
      whys[i] = absl::StrCat(
          options.label_columns.empty() ? "named like a label" : "listed in --labels", ", ",
          task_why,
          sample.present < used
              ? absl::StrCat("; empty in ", used - sample.present, " of the lines (no loss there)")
              : "");
      continue;
    }
    if (sample.has_semicolon) {
      roles[i] = proto::ColumnConfig::SEQUENCE;
      continue;  // step fields below
    }
    if (sample.has_comma) {
      roles[i] = proto::ColumnConfig::MULTI_CATEGORICAL;
      whys[i] = "cells with ',': token lists";
      continue;
    }
    if (HasIdWord(name)) {
      roles[i] = proto::ColumnConfig::CATEGORICAL;
      whys[i] = absl::StrCat("named like an id, ", sample.tokens.size(), " distinct values");
      categorical_columns.emplace_back(name, &sample);
      continue;
    }
    if (sample.all_integers && sample.tokens.size() <= kMaxCategoricalIntegers) {
      roles[i] = proto::ColumnConfig::CATEGORICAL;
      whys[i] =
          absl::StrCat("integers of only ", sample.tokens.size(), " distinct values: categories");
      categorical_columns.emplace_back(name, &sample);
      continue;
    }
    if (sample.all_numbers) {
      const Moments raw = MomentsOf(sample.numbers);
      if (raw.stddev == 0) {
        roles[i] = proto::ColumnConfig::IGNORED;
        whys[i] = absl::StrCat("the constant ", raw.mean, " in every sampled line");
        continue;
      }
      roles[i] = proto::ColumnConfig::NUMERIC;
      const double low = *std::min_element(sample.numbers.begin(), sample.numbers.end());
      proto::NumericTransform& transform = transforms[i];
      Moments moments = raw;
      if (low >= 0 && raw.skewness > kLog1pSkewness) {
        std::vector<double> logs;
        logs.reserve(sample.numbers.size());
        for (double v : sample.numbers) logs.push_back(std::log1p(v));
        moments = MomentsOf(logs);
        transform.set_log1p(true);
      }
      if (moments.stddev > 0) {
        transform.set_mean(moments.mean);
        transform.set_stddev(moments.stddev);
        transform.set_clip(kStandardizedClip);
      }
      whys[i] =
          absl::StrCat("numbers",
                       transform.log1p() ? absl::StrCat(" >= 0 of skewness ", raw.skewness, " > ",
                                                        kLog1pSkewness, ": log1p, then")
                                         : ":",
                       " standardized by the sample's mean ", moments.mean, " and stddev ",
                       moments.stddev, ", clipped to +-", kStandardizedClip);
      continue;
    }
    roles[i] = proto::ColumnConfig::CATEGORICAL;
    whys[i] = absl::StrCat("tokens, ", sample.tokens.size(),
                           sample.tokens.size() >= kMaxDistinctTracked ? " or more" : "",
                           " distinct values");
    categorical_columns.emplace_back(name, &sample);
  }

  absl::flat_hash_set<std::string> shared_spaces;
  std::vector<std::vector<proto::StepFieldConfig>> step_fields(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (roles[i] != proto::ColumnConfig::SEQUENCE) continue;
    absl::StatusOr<std::vector<proto::StepFieldConfig>> steps =
        GuessStepFields(names[i], samples[i], categorical_columns, &whys[i]);
    if (!steps.ok()) {
      roles[i] = proto::ColumnConfig::IGNORED;
      whys[i] = absl::StrCat("cells with ';' but ", steps.status().message(),
                             ": not a sequence the reader can read");
      continue;
    }
    step_fields[i] = *std::move(steps);
    for (const proto::StepFieldConfig& step : step_fields[i]) {
      if (!step.hash_space().empty()) shared_spaces.insert(step.hash_space());
    }
  }

  for (size_t i = 0; i < names.size(); ++i) {
    proto::ColumnConfig* column = guess.dataset.add_columns();
    column->set_name(names[i]);
    column->set_role(roles[i]);
    if (roles[i] == proto::ColumnConfig::NUMERIC) *column->mutable_transform() = transforms[i];
    if (roles[i] == proto::ColumnConfig::SEQUENCE) {
      for (const proto::StepFieldConfig& step : step_fields[i]) *column->add_step_fields() = step;
    }
    if (roles[i] == proto::ColumnConfig::CATEGORICAL && shared_spaces.contains(names[i])) {
      column->set_hash_space(names[i]);
    }
    guess.reasons.push_back(
        absl::StrCat(names[i], ": ", proto::ColumnConfig::Role_Name(roles[i]), " (", whys[i], ")"));
  }
  if (max_abs > kDefaultMaxAbsNumeric / kMaxAbsNumericHeadroom) {
    guess.dataset.set_max_abs_numeric(max_abs * kMaxAbsNumericHeadroom);
    guess.reasons.push_back(absl::StrCat("max_abs_numeric: ", max_abs * kMaxAbsNumericHeadroom,
                                         " (sampled values reach ", max_abs, ")"));
  }
  if (skipped > 0) {
    guess.reasons.push_back(absl::StrCat("note: ", skipped, " of the ", lines.size(),
                                         " sampled lines lack the header's ", names.size(),
                                         " cells and were not used"));
  }
  return guess;
}

}  // namespace granary
