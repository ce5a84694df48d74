#include "common/config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/config_location.h"
#include "google/protobuf/io/tokenizer.h"

namespace granary {
namespace {

using google::protobuf::TextFormat;

// Keeps the first error Protobuf's text parser reports, with its position.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!has_error_) {
      has_error_ = true;
      // Protobuf counts lines and columns from 0.
      error_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}

  bool has_error() const { return has_error_; }
  const std::string& error() const { return error_; }

 private:
  bool has_error_ = false;
  std::string error_;
};

// Validates every element of the repeated field `field_name` of the message at `parent` with
// validate(element, its location) and rejects an element named like an earlier one:
// "<where>: duplicate <what> '<name>'<context>". The first error.
template <typename Element, typename Validate>
absl::Status ValidateUniquelyNamed(const ConfigLocation& parent,
                                   const google::protobuf::RepeatedPtrField<Element>& elements,
                                   const std::string& field_name, absl::string_view what,
                                   absl::string_view context, const Validate& validate) {
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < elements.size(); ++i) {
    const Element& element = elements.Get(i);
    const ConfigLocation at = parent.Nested(element, field_name, i);
    absl::Status status = validate(element, at);
    if (!status.ok()) return status;
    if (!names.insert(element.name()).second) {
      return ConfigLocation::Invalid(
          at.Here(), absl::StrCat("duplicate ", what, " '", element.name(), "'", context));
    }
  }
  return absl::OkStatus();
}

// One numeric rule of an optimizer field: the field must satisfy `ok` when it is set (or,
// for non-optional fields, always).
struct FieldRule {
  const char* field;
  bool (*ok)(float);
  const char* requirement;
};

// TableConfig.l2 must be below this (see ValidateTable).
constexpr float kMaxTableL2 = 1.0f;

constexpr bool Positive(float v) { return v > 0; }
constexpr bool NonNegative(float v) { return v >= 0; }
constexpr bool UnitInterval(float v) { return v >= 0 && v < 1; }

// `table_at` is where the table stands in the cluster config.
absl::Status ValidateOptimizer(const proto::TableConfig& table, const ConfigLocation& table_at) {
  const proto::OptimizerConfig& optimizer = table.optimizer();
  const google::protobuf::Message* settings = nullptr;
  static constexpr FieldRule kSgdRules[] = {{"learning_rate", Positive, "> 0"}};
  static constexpr FieldRule kAdagradRules[] = {{"learning_rate", Positive, "> 0"},
                                                {"initial_accumulator", NonNegative, ">= 0"},
                                                {"epsilon", Positive, "> 0"}};
  static constexpr FieldRule kAdamRules[] = {{"learning_rate", Positive, "> 0"},
                                             {"beta1", UnitInterval, "in [0, 1)"},
                                             {"beta2", UnitInterval, "in [0, 1)"},
                                             {"epsilon", Positive, "> 0"}};
  static constexpr FieldRule kFtrlRules[] = {{"alpha", Positive, "> 0"},
                                             {"beta", NonNegative, ">= 0"},
                                             {"l1", NonNegative, ">= 0"},
                                             {"l2", NonNegative, ">= 0"}};
  absl::Span<const FieldRule> rules;
  switch (optimizer.kind_case()) {
    case proto::OptimizerConfig::kSgd:
      settings = &optimizer.sgd();
      rules = kSgdRules;
      break;
    case proto::OptimizerConfig::kAdagrad:
      settings = &optimizer.adagrad();
      rules = kAdagradRules;
      break;
    case proto::OptimizerConfig::kAdam:
      settings = &optimizer.adam();
      rules = kAdamRules;
      break;
    case proto::OptimizerConfig::kFtrl:
      settings = &optimizer.ftrl();
      rules = kFtrlRules;
      break;
    case proto::OptimizerConfig::KIND_NOT_SET:
      return ConfigLocation::Invalid(table_at.Here(),
                                     absl::StrCat("table '", table.name(), "' has no optimizer"));
  }
  const google::protobuf::Descriptor* descriptor = settings->GetDescriptor();
  const google::protobuf::Reflection* reflection = settings->GetReflection();
  const google::protobuf::FieldDescriptor* kind =
      optimizer.GetDescriptor()->FindFieldByNumber(static_cast<int>(optimizer.kind_case()));
  const ConfigLocation settings_at =
      table_at.Nested(optimizer, "optimizer").Nested(*settings, kind->name());
  for (const FieldRule& rule : rules) {
    const google::protobuf::FieldDescriptor* field = descriptor->FindFieldByName(rule.field);
    bool set = !field->has_presence() || reflection->HasField(*settings, field);
    if (set && !rule.ok(reflection->GetFloat(*settings, field))) {
      return ConfigLocation::Invalid(settings_at.At(rule.field),
                                     absl::StrCat("table '", table.name(), "' needs ", kind->name(),
                                                  " ", rule.field, " ", rule.requirement));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTable(const proto::TableConfig& table, const ConfigLocation& at) {
  if (table.name().empty()) return ConfigLocation::Invalid(at.Here(), "table has no name");
  if (table.dim() == 0) {
    return ConfigLocation::Invalid(at.At("dim"),
                                   absl::StrCat("table '", table.name(), "' needs dim >= 1"));
  }
  if (table.initializer().scale() < 0) {
    return ConfigLocation::Invalid(
        at.Nested(table.initializer(), "initializer").At("scale"),
        absl::StrCat("table '", table.name(), "' has a negative initializer scale"));
  }
  const proto::AdmissionConfig& admission = table.admission();
  if (admission.admit_probability() < 0 || admission.admit_probability() > 1) {
    return ConfigLocation::Invalid(
        at.Nested(admission, "admission").At("admit_probability"),
        absl::StrCat("table '", table.name(), "' needs admit_probability in [0, 1]"));
  }
  const proto::EvictionConfig& eviction = table.eviction();
  const ConfigLocation eviction_at = at.Nested(eviction, "eviction");
  if (eviction.has_show_decay() && !(eviction.show_decay() > 0 && eviction.show_decay() <= 1)) {
    return ConfigLocation::Invalid(
        eviction_at.At("show_decay"),
        absl::StrCat("table '", table.name(), "' needs show_decay in (0, 1]"));
  }
  if (eviction.min_decayed_count() < 0) {
    return ConfigLocation::Invalid(
        eviction_at.At("min_decayed_count"),
        absl::StrCat("table '", table.name(), "' needs min_decayed_count >= 0"));
  }
  // Also refuses NaN: a NaN bound would clamp every gradient to NaN.
  if (table.has_clip_gradient_abs() && !(table.clip_gradient_abs() > 0)) {
    return ConfigLocation::Invalid(
        at.At("clip_gradient_abs"),
        absl::StrCat("table '", table.name(),
                     "' needs clip_gradient_abs > 0 (unset: no clipping)"));
  }
  // The penalty (l2 / 2) |w|^2 is added on every push to a loss that is a batch mean of order 1,
  // where useful values are 1e-6 to 1e-2; from kMaxTableL2 on it outweighs the loss (and
  // flips the sign of w under SGD at a learning rate of 1), which only a typo asks for. Also
  // refuses NaN.
  if (table.has_l2() && !(table.l2() >= 0 && table.l2() < kMaxTableL2)) {
    return ConfigLocation::Invalid(
        at.At("l2"), absl::StrCat("table '", table.name(), "' needs l2 in [0, ", kMaxTableL2,
                                  "), not ", table.l2(), " (unset: no L2)"));
  }
  // Decoupled decay is defined for Adam (AdamW); under SGD it would equal l2, and Adagrad and
  // FTRL have no published decoupled form. lr * wd >= 1 would shrink w past zero on every push.
  // Also refuses NaN and infinities.
  if (table.has_weight_decay()) {
    const float decay = table.weight_decay();
    if (!(decay >= 0 && std::isfinite(decay))) {
      return ConfigLocation::Invalid(
          at.At("weight_decay"),
          absl::StrCat("table '", table.name(), "' needs a finite weight_decay >= 0, not ", decay,
                       " (unset: no decay)"));
    }
    if (decay > 0 && !table.optimizer().has_adam()) {
      return ConfigLocation::Invalid(
          at.At("weight_decay"),
          absl::StrCat("table '", table.name(),
                       "': weight_decay (decoupled, AdamW) needs the adam optimizer; use l2 with "
                       "the others"));
    }
    if (!(table.optimizer().adam().learning_rate() * decay < 1)) {
      return ConfigLocation::Invalid(
          at.At("weight_decay"),
          absl::StrCat("table '", table.name(),
                       "' needs adam learning_rate * weight_decay < 1, not ",
                       table.optimizer().adam().learning_rate(), " * ", decay));
    }
  }
  // Pulled rows carry no error feedback, so a pull is at most rounded to fp16, never quantized.
  const proto::WireConfig& wire = table.wire();
  if (wire.pull_values() != proto::VALUES_FP32 && wire.pull_values() != proto::VALUES_FP16) {
    return ConfigLocation::Invalid(
        at.Nested(wire, "wire").At("pull_values"),
        absl::StrCat("table '", table.name(),
                     "' needs pull_values VALUES_FP32 or VALUES_FP16, not ",
                     proto::ValueEncoding_Name(wire.pull_values())));
  }
  if (!proto::ValueEncoding_IsValid(wire.push_values())) {
    return ConfigLocation::Invalid(
        at.Nested(wire, "wire").At("push_values"),
        absl::StrCat("table '", table.name(), "' has an unknown push_values ", wire.push_values()));
  }
  if (!proto::KeyEncoding_IsValid(wire.keys())) {
    return ConfigLocation::Invalid(
        at.Nested(wire, "wire").At("keys"),
        absl::StrCat("table '", table.name(), "' has an unknown keys encoding ", wire.keys(),
                     " (KEYS_RAW or KEYS_ELIAS_FANO)"));
  }
  // A dense vector must never lose a block to admission or eviction.
  if (table.dense_size() > 0 && (table.has_admission() || table.has_eviction())) {
    return ConfigLocation::Invalid(
        at.At("dense_size"),
        absl::StrCat("dense table '", table.name(), "' cannot have admission or eviction"));
  }
  return ValidateOptimizer(table, at);
}

bool IsCategorical(proto::ColumnConfig::Role role) {
  return role == proto::ColumnConfig::CATEGORICAL || role == proto::ColumnConfig::MULTI_CATEGORICAL;
}

absl::Status ValidateStepFields(const proto::ColumnConfig& column, const ConfigLocation& at) {
  if (column.step_fields_size() == 0) {
    return ConfigLocation::Invalid(
        at.Here(), absl::StrCat("sequence column '", column.name(), "' declares no step_fields"));
  }
  auto validate_step = [&](const proto::StepFieldConfig& step, const ConfigLocation& step_at) {
    if (step.name().empty()) {
      return ConfigLocation::Invalid(
          step_at.Here(), absl::StrCat("a step field of column '", column.name(), "' has no name"));
    }
    if (step.kind() == proto::StepFieldConfig::KIND_UNSPECIFIED) {
      return ConfigLocation::Invalid(
          step_at.Here(), absl::StrCat("step field '", step.name(), "' of column '", column.name(),
                                       "' has no kind (CATEGORICAL or NUMERIC)"));
    }
    if (step.kind() != proto::StepFieldConfig::CATEGORICAL && !step.hash_space().empty()) {
      return ConfigLocation::Invalid(
          step_at.At("hash_space"),
          absl::StrCat("step field '", step.name(), "' of column '", column.name(),
                       "' is not CATEGORICAL and cannot have a hash_space"));
    }
    return absl::OkStatus();
  };
  return ValidateUniquelyNamed(at, column.step_fields(), "step_fields", "step field",
                               absl::StrCat(" in column '", column.name(), "'"), validate_step);
}

// A NUMERIC column's transform: mean and stddev both or neither, stddev > 0, clip > 0, min and
// max both or neither with min < max, all
// finite (a NaN or infinite setting would turn every value of the column into NaN or 0).
absl::Status ValidateNumericTransform(const proto::ColumnConfig& column, const ConfigLocation& at) {
  const proto::NumericTransform& transform = column.transform();
  const ConfigLocation transform_at = at.Nested(transform, "transform");
  if (transform.has_mean() != transform.has_stddev()) {
    return ConfigLocation::Invalid(
        transform_at.At(transform.has_mean() ? "mean" : "stddev"),
        absl::StrCat("column '", column.name(), "' transform needs both mean and stddev"));
  }
  if (transform.has_mean() && !std::isfinite(transform.mean())) {
    return ConfigLocation::Invalid(
        transform_at.At("mean"),
        absl::StrCat("column '", column.name(), "' transform needs a finite mean"));
  }
  if (transform.has_stddev() && !(transform.stddev() > 0 && std::isfinite(transform.stddev()))) {
    return ConfigLocation::Invalid(
        transform_at.At("stddev"),
        absl::StrCat("column '", column.name(), "' transform needs stddev > 0 and finite"));
  }
  if (transform.has_clip() && !(transform.clip() > 0 && std::isfinite(transform.clip()))) {
    return ConfigLocation::Invalid(
        transform_at.At("clip"),
        absl::StrCat("column '", column.name(), "' transform needs clip > 0 and finite"));
  }
  if (transform.has_min() != transform.has_max()) {
    return ConfigLocation::Invalid(
        transform_at.At(transform.has_min() ? "min" : "max"),
        absl::StrCat("column '", column.name(), "' transform needs both min and max"));
  }
  if (transform.has_min() && !(std::isfinite(transform.min()) && std::isfinite(transform.max()) &&
                               transform.min() < transform.max())) {
    return ConfigLocation::Invalid(
        transform_at.At("max"),
        absl::StrCat("column '", column.name(), "' transform needs finite min < max, not ",
                     transform.min(), " and ", transform.max()));
  }
  return absl::OkStatus();
}

absl::Status ValidateColumn(const proto::ColumnConfig& column, const ConfigLocation& at) {
  if (column.name().empty()) return ConfigLocation::Invalid(at.Here(), "column has no name");
  // The header line is split on tabs and lines on newlines; such a name could never match.
  if (column.name().find_first_of("\t\r\n") != std::string::npos) {
    return ConfigLocation::Invalid(at.Here(), absl::StrCat("column name '", column.name(),
                                                           "' contains a tab or a line break"));
  }
  const std::string role = proto::ColumnConfig::Role_Name(column.role());
  if (column.role() == proto::ColumnConfig::ROLE_UNSPECIFIED) {
    return ConfigLocation::Invalid(at.Here(),
                                   absl::StrCat("column '", column.name(), "' has no role"));
  }
  if (column.has_transform()) {
    if (column.role() != proto::ColumnConfig::NUMERIC) {
      return ConfigLocation::Invalid(at.At("transform"),
                                     absl::StrCat("column '", column.name(), "' is ", role,
                                                  "; only a NUMERIC column has a transform"));
    }
    absl::Status status = ValidateNumericTransform(column, at);
    if (!status.ok()) return status;
  }
  if (!IsCategorical(column.role()) && !column.hash_space().empty()) {
    return ConfigLocation::Invalid(
        at.At("hash_space"),
        absl::StrCat("column '", column.name(), "' is ", role,
                     "; hash_space applies only to CATEGORICAL and MULTI_CATEGORICAL columns"));
  }
  if (column.role() != proto::ColumnConfig::SEQUENCE) {
    if (column.step_fields_size() > 0) {
      return ConfigLocation::Invalid(at.At("step_fields", 0),
                                     absl::StrCat("column '", column.name(), "' is ", role,
                                                  "; only a SEQUENCE has step_fields"));
    }
    const char* sequence_field = column.has_max_sequence_length()  ? "max_sequence_length"
                                 : column.has_max_sequence_steps() ? "max_sequence_steps"
                                                                   : nullptr;
    if (sequence_field != nullptr) {
      return ConfigLocation::Invalid(at.At(sequence_field),
                                     absl::StrCat("column '", column.name(), "' is ", role,
                                                  "; only a SEQUENCE has ", sequence_field));
    }
    return absl::OkStatus();
  }
  if (column.has_max_sequence_length() && column.max_sequence_length() == 0) {
    return ConfigLocation::Invalid(
        at.At("max_sequence_length"),
        absl::StrCat("column '", column.name(), "' needs max_sequence_length >= 1 (default ",
                     kDefaultMaxSequenceLength, ")"));
  }
  const uint32_t length =
      column.has_max_sequence_length() ? column.max_sequence_length() : kDefaultMaxSequenceLength;
  const uint32_t steps =
      column.has_max_sequence_steps() ? column.max_sequence_steps() : kDefaultMaxSequenceSteps;
  if (steps < length) {
    return ConfigLocation::Invalid(
        at.At(column.has_max_sequence_steps() ? "max_sequence_steps" : "max_sequence_length"),
        absl::StrCat("column '", column.name(), "' needs max_sequence_steps (", steps,
                     ") >= max_sequence_length (", length, "); unset they are ",
                     kDefaultMaxSequenceSteps, " and ", kDefaultMaxSequenceLength));
  }
  return ValidateStepFields(column, at);
}

// ParseTextProtoFile, then `validate` with the parse locations.
template <typename Config>
absl::StatusOr<Config> LoadValidated(const std::string& path,
                                     absl::Status (*validate)(const Config&, const std::string&,
                                                              const TextFormat::ParseInfoTree*)) {
  Config config;
  TextFormat::ParseInfoTree tree;
  absl::Status status = ParseTextProtoFile(path, &config, &tree);
  if (!status.ok()) return status;
  status = validate(config, path, &tree);
  if (!status.ok()) return status;
  return config;
}

}  // namespace

absl::Status ParseTextProto(const std::string& text, const std::string& source_name,
                            google::protobuf::Message* message, TextFormat::ParseInfoTree* tree) {
  TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(tree);
  if (!parser.ParseFromString(text, message) || errors.has_error()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ":", errors.has_error() ? errors.error() : std::string("parse failed")));
  }
  return absl::OkStatus();
}

absl::Status ParseTextProtoFile(const std::string& path, google::protobuf::Message* message,
                                TextFormat::ParseInfoTree* tree) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open config file"));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return ParseTextProto(text.str(), path, message, tree);
}

absl::Status ValidateClusterConfig(const proto::ClusterConfig& config,
                                   const std::string& source_name,
                                   const TextFormat::ParseInfoTree* tree) {
  return ValidateUniquelyNamed(ConfigLocation(config, tree, source_name), config.tables(), "tables",
                               "table name", "", ValidateTable);
}

absl::StatusOr<proto::ClusterConfig> LoadClusterConfig(const std::string& path) {
  return LoadValidated<proto::ClusterConfig>(path, ValidateClusterConfig);
}

absl::Status ValidateDatasetConfig(const proto::DatasetConfig& config,
                                   const std::string& source_name,
                                   const TextFormat::ParseInfoTree* tree) {
  if (config.columns_size() == 0) {
    return ConfigLocation::Invalid(source_name, "dataset has no columns");
  }
  const ConfigLocation at(config, tree, source_name);
  absl::Status status =
      ValidateUniquelyNamed(at, config.columns(), "columns", "column name", "", ValidateColumn);
  if (!status.ok()) return status;
  if (config.has_max_bad_line_fraction() &&
      !(config.max_bad_line_fraction() >= 0 && config.max_bad_line_fraction() <= 1)) {
    return ConfigLocation::Invalid(at.At("max_bad_line_fraction"),
                                   "max_bad_line_fraction must be in [0, 1]");
  }
  if (config.has_max_abs_numeric() && !(config.max_abs_numeric() > 0)) {
    return ConfigLocation::Invalid(
        at.At("max_abs_numeric"),
        absl::StrCat("max_abs_numeric must be > 0 (default ", kDefaultMaxAbsNumeric, ")"));
  }
  if (config.has_max_line_bytes() && config.max_line_bytes() == 0) {
    return ConfigLocation::Invalid(
        at.At("max_line_bytes"),
        absl::StrCat("max_line_bytes must be >= 1 (default ", kDefaultMaxLineBytes, ")"));
  }
  if (config.has_read_timeout_seconds() &&
      !(config.read_timeout_seconds() > 0 && std::isfinite(config.read_timeout_seconds()))) {
    return ConfigLocation::Invalid(at.At("read_timeout_seconds"),
                                   absl::StrCat("read_timeout_seconds must be > 0 and finite ",
                                                "(default ", kDefaultReadTimeoutSeconds, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::DatasetConfig> LoadDatasetConfig(const std::string& path) {
  return LoadValidated<proto::DatasetConfig>(path, ValidateDatasetConfig);
}

}  // namespace granary
