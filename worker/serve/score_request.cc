#include "worker/serve/score_request.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto/serve.pb.h"
#include "google/protobuf/util/json_util.h"

namespace granary {

namespace {

// A cell may not hold what separates cells and lines in the TSV format.
constexpr char kCellSeparators[] = "\t\r\n";

// Parses `body` into *message (unknown fields refused), or InvalidArgument saying it is not
// `what` and why.
absl::Status ParseBody(std::string_view body, const char* what,
                       google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), message, options);
  if (parsed.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("the body is not ", what, ": ", parsed.message().as_string()));
}

}  // namespace

ScoreRequestParser::ScoreRequestParser(const proto::DatasetConfig& dataset, int max_candidates)
    : max_candidates_(max_candidates), num_columns_(dataset.columns_size()) {
  for (int i = 0; i < dataset.columns_size(); ++i) {
    const proto::ColumnConfig& column = dataset.columns(i);
    header_columns_.push_back(column.name());
    if (column.role() == proto::ColumnConfig::LABEL) {
      not_input_[column.name()] = "a label, not an input";
    } else if (column.role() == proto::ColumnConfig::IGNORED) {
      not_input_[column.name()] = "ignored by the model";
    } else {
      input_column_[column.name()] = i;
    }
  }
  header_ = absl::StrJoin(header_columns_, "\t");
}

absl::StatusOr<int> ScoreRequestParser::CheckCell(const std::string& where,
                                                  const std::string& column,
                                                  const std::string& value) const {
  auto input = input_column_.find(column);
  if (input == input_column_.end()) {
    auto other = not_input_.find(column);
    return absl::InvalidArgumentError(
        other == not_input_.end()
            ? absl::StrCat(where, ": unknown column '", column, "'")
            : absl::StrCat(where, ": column '", column, "' is ", other->second));
  }
  if (value.find_first_of(kCellSeparators) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the value of column '", column, "' holds a tab or line break"));
  }
  return input->second;
}

template <typename ColumnMap>
absl::Status ScoreRequestParser::FillUserCells(const ColumnMap& user,
                                               std::vector<std::string>* cells,
                                               std::vector<bool>* given) const {
  cells->assign(num_columns_, "");
  given->assign(num_columns_, false);
  for (const auto& [column, value] : user) {
    absl::StatusOr<int> index = CheckCell("user", column, value);
    if (!index.ok()) return index.status();
    (*cells)[*index] = value;
    (*given)[*index] = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<ScoreRequestParser::UserQuery> ScoreRequestParser::ParseTopK(
    std::string_view body) const {
  proto::TopKRequest request;
  if (absl::Status parsed = ParseBody(body, "a top-k request", &request); !parsed.ok()) {
    return parsed;
  }
  if (request.k() < 1 || request.k() > max_candidates_) {
    return absl::InvalidArgumentError(
        absl::StrCat("k is ", request.k(), ", not in [1, --max_candidates=", max_candidates_, "]"));
  }
  std::vector<std::string> cells;
  std::vector<bool> given;
  absl::Status user = FillUserCells(request.user(), &cells, &given);
  if (!user.ok()) return user;
  return UserQuery{absl::StrJoin(cells, "\t"), request.k()};
}

absl::StatusOr<std::vector<std::string>> ScoreRequestParser::Parse(std::string_view body) const {
  proto::ScoreRequest request;
  if (absl::Status parsed = ParseBody(body, "a score request", &request); !parsed.ok()) {
    return parsed;
  }
  if (!request.candidate_columns().empty()) {
    if (!request.candidates().empty()) {
      return absl::InvalidArgumentError(
          "the request gives both candidates and candidate_columns; give one");
    }
    return ParseCandidateColumns(request);
  }
  if (request.candidates().empty()) {
    return absl::InvalidArgumentError("the request has no candidates");
  }
  if (request.candidates_size() > max_candidates_) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request has ", request.candidates_size(),
                     " candidates, more than --max_candidates=", max_candidates_));
  }
  std::vector<std::string> user_cells;
  std::vector<bool> given_by_user;
  absl::Status user = FillUserCells(request.user(), &user_cells, &given_by_user);
  if (!user.ok()) return user;
  std::vector<std::string> lines;
  lines.reserve(request.candidates_size());
  std::vector<std::string> cells;
  for (int c = 0; c < request.candidates_size(); ++c) {
    cells = user_cells;
    const std::string where = absl::StrCat("candidate ", c);
    for (const auto& [column, value] : request.candidates(c).fields()) {
      if (value.kind_case() != google::protobuf::Value::kStringValue) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": the value of column '", column,
                         "' is not a string (values are strings, as the cells of the TSV)"));
      }
      absl::StatusOr<int> index = CheckCell(where, column, value.string_value());
      if (!index.ok()) return index.status();
      if (given_by_user[*index]) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": column '", column, "' is given by the user too"));
      }
      cells[*index] = value.string_value();
    }
    lines.push_back(absl::StrJoin(cells, "\t"));
  }
  return lines;
}

absl::StatusOr<std::vector<std::string>> ScoreRequestParser::ParseCandidateColumns(
    const proto::ScoreRequest& request) const {
  std::vector<std::string> user_cells;
  std::vector<bool> given_by_user;
  absl::Status user = FillUserCells(request.user(), &user_cells, &given_by_user);
  if (!user.ok()) return user;
  // The values of each header column the candidates give, or null: a line takes its cell from
  // there, else from the user's cells.
  std::vector<const google::protobuf::RepeatedPtrField<std::string>*> candidate_values(num_columns_,
                                                                                       nullptr);
  int num_candidates = 0;
  for (const auto& [column, list] : request.candidate_columns()) {
    const std::string where = absl::StrCat("candidate column '", column, "'");
    absl::StatusOr<int> index = CheckCell(where, column, "");
    if (!index.ok()) return index.status();
    if (given_by_user[*index]) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": column '", column, "' is given by the user too"));
    }
    for (int c = 0; c < list.values_size(); ++c) {
      if (list.values(c).find_first_of(kCellSeparators) != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": value ", c, " holds a tab or line break"));
      }
    }
    candidate_values[*index] = &list.values();
    num_candidates = std::max(num_candidates, list.values_size());
  }
  if (num_candidates == 0) return absl::InvalidArgumentError("the request has no candidates");
  if (num_candidates > max_candidates_) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request has ", num_candidates,
                     " candidates, more than --max_candidates=", max_candidates_));
  }
  // In header order, so that the column named is the same whatever the map's order.
  for (int i = 0; i < num_columns_; ++i) {
    if (candidate_values[i] != nullptr && candidate_values[i]->size() != num_candidates) {
      return absl::InvalidArgumentError(absl::StrCat(
          "candidate column '", header_columns_[i], "' has ", candidate_values[i]->size(),
          " values, not one per candidate (", num_candidates, ", the longest column's)"));
    }
  }
  // One allocation per line: its length is summed first, then the cells are appended.
  std::vector<std::string> lines(num_candidates);
  for (int c = 0; c < num_candidates; ++c) {
    size_t length = num_columns_ - 1;  // the tabs
    for (int i = 0; i < num_columns_; ++i) {
      length +=
          candidate_values[i] != nullptr ? (*candidate_values[i])[c].size() : user_cells[i].size();
    }
    std::string& line = lines[c];
    line.reserve(length);
    for (int i = 0; i < num_columns_; ++i) {
      if (i > 0) line.push_back('\t');
      line.append(candidate_values[i] != nullptr ? (*candidate_values[i])[c] : user_cells[i]);
    }
  }
  return lines;
}

}  // namespace granary
