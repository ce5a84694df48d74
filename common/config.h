// Loading Protobuf text configs (configs/*.pbtxt).
//
// Every error names the file and, where the problem has one, the line: a misspelt field, a
// wrong type, an unknown enum value, or a value that parses but is invalid (dim 0, duplicate
// table name). A config never falls back to a silent default.
//
// Thread-safe: pure functions of their arguments and the file system.
#ifndef GRANARY_COMMON_CONFIG_H_
#define GRANARY_COMMON_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "common/proto/dataset.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace granary {

// Parses `text` (named `source_name` in errors) into `message`, recording where each field
// stood in `tree` if it is non-null. Returns InvalidArgument "source:line:column: reason" on
// the first syntax or schema error.
absl::Status ParseTextProto(const std::string& text, const std::string& source_name,
                            google::protobuf::Message* message,
                            google::protobuf::TextFormat::ParseInfoTree* tree = nullptr);

// Reads `path` and parses it as above. NotFound if the file cannot be read.
absl::Status ParseTextProtoFile(const std::string& path, google::protobuf::Message* message,
                                google::protobuf::TextFormat::ParseInfoTree* tree = nullptr);

// Checks the semantic rules of a cluster config: every table named, uniquely; dim >= 1; a
// non-negative initializer scale; admit_probability in [0, 1]; show_decay in (0, 1] when set
// and min_decayed_count >= 0; a dense table without admission or eviction; an optimizer, whose
// settings are in range (learning rate or FTRL alpha > 0, epsilon > 0, Adam betas in [0, 1),
// the other settings >= 0). Returns InvalidArgument for the first broken rule. `tree` may be
// null; when given, errors carry the line of the offending field.
absl::Status ValidateClusterConfig(const proto::ClusterConfig& config,
                                   const std::string& source_name,
                                   const google::protobuf::TextFormat::ParseInfoTree* tree);

// ParseTextProtoFile + ValidateClusterConfig.
absl::StatusOr<proto::ClusterConfig> LoadClusterConfig(const std::string& path);

// Defaults of the DatasetConfig and ColumnConfig fields of the same names (the others are in
// worker/reader.h).
inline constexpr double kDefaultMaxAbsNumeric = 1e6;
inline constexpr uint64_t kDefaultMaxLineBytes = uint64_t{1} << 20;
inline constexpr uint32_t kDefaultMaxSequenceLength = 100;
inline constexpr uint32_t kDefaultMaxSequenceSteps = 10000;
inline constexpr double kDefaultReadTimeoutSeconds = 600;

// Checks the semantic rules of a dataset config (common/proto/dataset.proto): at least one
// column; every column named, unique and with a role; hash_space only on categorical fields;
// a SEQUENCE column with >= 1 uniquely named step field, each with a kind;
// max_sequence_length >= 1, max_sequence_steps >= max_sequence_length (both as defaulted
// below), each only on SEQUENCE; max_bad_line_fraction in [0, 1]; max_abs_numeric > 0 (and not
// NaN); max_line_bytes >= 1; read_timeout_seconds > 0 (and finite); a transform only on a
// NUMERIC column, with mean and stddev both or neither, stddev > 0, clip > 0, all finite. Returns
// InvalidArgument for the first broken rule. `tree` as for ValidateClusterConfig.
absl::Status ValidateDatasetConfig(const proto::DatasetConfig& config,
                                   const std::string& source_name,
                                   const google::protobuf::TextFormat::ParseInfoTree* tree);

// ParseTextProtoFile + ValidateDatasetConfig.
absl::StatusOr<proto::DatasetConfig> LoadDatasetConfig(const std::string& path);

}  // namespace granary

#endif  // GRANARY_COMMON_CONFIG_H_
