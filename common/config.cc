#include "common/config.h"

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
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

// "source:line" of `field_name` of `message` (index for repeated fields), or "source" if the
// tree does not know it.
std::string Where(const std::string& source, const TextFormat::ParseInfoTree* tree,
                  const google::protobuf::Message& message, const std::string& field_name,
                  int index = -1) {
  if (tree == nullptr) return source;
  const google::protobuf::FieldDescriptor* field =
      message.GetDescriptor()->FindFieldByName(field_name);
  if (field == nullptr) return source;
  TextFormat::ParseLocation location = tree->GetLocation(field, index);
  if (location.line < 0) return source;
  return absl::StrCat(source, ":", location.line + 1);
}

const TextFormat::ParseInfoTree* Nested(const TextFormat::ParseInfoTree* tree,
                                        const google::protobuf::Message& message,
                                        const std::string& field_name, int index = -1) {
  if (tree == nullptr) return nullptr;
  const google::protobuf::FieldDescriptor* field =
      message.GetDescriptor()->FindFieldByName(field_name);
  return field == nullptr ? nullptr : tree->GetTreeForNested(field, index);
}

absl::Status ValidateTable(const proto::TableConfig& table, const std::string& where_table,
                           const std::string& source, const TextFormat::ParseInfoTree* tree) {
  if (table.name().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where_table, ": table has no name"));
  }
  if (table.dim() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(Where(source, tree, table, "dim"), ": table '",
                                                   table.name(), "' needs dim >= 1"));
  }
  if (table.initializer().scale() < 0) {
    const TextFormat::ParseInfoTree* init_tree = Nested(tree, table, "initializer");
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, init_tree, table.initializer(), "scale"), ": table '",
                     table.name(), "' has a negative initializer scale"));
  }
  switch (table.optimizer().kind_case()) {
    case proto::OptimizerConfig::kSgd: {
      if (!(table.optimizer().sgd().learning_rate() > 0)) {
        const TextFormat::ParseInfoTree* sgd_tree =
            Nested(Nested(tree, table, "optimizer"), table.optimizer(), "sgd");
        return absl::InvalidArgumentError(
            absl::StrCat(Where(source, sgd_tree, table.optimizer().sgd(), "learning_rate"),
                         ": table '", table.name(), "' needs learning_rate > 0"));
      }
      break;
    }
    case proto::OptimizerConfig::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          absl::StrCat(where_table, ": table '", table.name(), "' has no optimizer"));
  }
  return absl::OkStatus();
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
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config.tables_size(); ++i) {
    const proto::TableConfig& table = config.tables(i);
    std::string where_table = Where(source_name, tree, config, "tables", i);
    absl::Status status =
        ValidateTable(table, where_table, source_name, Nested(tree, config, "tables", i));
    if (!status.ok()) return status;
    if (!names.insert(table.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where_table, ": duplicate table name '", table.name(), "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::ClusterConfig> LoadClusterConfig(const std::string& path) {
  proto::ClusterConfig config;
  TextFormat::ParseInfoTree tree;
  absl::Status status = ParseTextProtoFile(path, &config, &tree);
  if (!status.ok()) return status;
  status = ValidateClusterConfig(config, path, &tree);
  if (!status.ok()) return status;
  return config;
}

}  // namespace granary
