// ScoreRequestParser: the body of POST /score (common/proto/serve.proto ScoreRequest, JSON in
// Protobuf's mapping) checked against the job's dataset and turned into one input line per
// candidate, in the dataset's TSV format, for the scorer (worker/serve/scorer.h) to parse
// exactly as the trainer parses its files.
//
// A request names columns of the dataset: the user's (shared by every candidate) and each
// candidate's; a column given by neither is an empty cell (missing). Values are strings, as
// the TSV's cells. Refused, with an InvalidArgument naming the problem (granary_serve answers
// 400 with it): a body that is not the JSON of a ScoreRequest (an unknown field, a value of the
// wrong type), an unknown column, a LABEL or IGNORED column (not an input), a column given both
// by the user and by a candidate, a value holding a tab or a line break, no candidate, more
// than max_candidates.
//
// Candidates come in one of two forms: `candidates`, a JSON object per candidate, or
// `candidate_columns`, a list of values per column (cheaper to parse: no Struct per
// candidate). Both in one request is refused, and so is a column whose list is not as
// long as the longest (named, with its length).
//
// Thread-safe: const after construction.
#ifndef GRANARY_WORKER_SERVE_SCORE_REQUEST_H_
#define GRANARY_WORKER_SERVE_SCORE_REQUEST_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"

namespace granary {

namespace proto {
class ScoreRequest;
}  // namespace proto

// Default of granary_serve's --max_candidates: a bound on one request's work and memory.
inline constexpr int kDefaultMaxCandidates = 10000;

class ScoreRequestParser {
 public:
  // REQUIRES: `dataset` passed ValidateDatasetConfig; max_candidates >= 1.
  ScoreRequestParser(const proto::DatasetConfig& dataset, int max_candidates);

  // The header line of the lines Parse returns: every column of the dataset, in config order.
  const std::string& header() const { return header_; }

  // One TSV line per candidate, in request order (see the top), or InvalidArgument naming the
  // problem ("candidate 3: unknown column 'movie'").
  absl::StatusOr<std::vector<std::string>> Parse(std::string_view body) const;

  // The body of POST /topk (TopKRequest): the user's line (no item columns) and k. The same
  // refusals for the user's columns; InvalidArgument if k is not in [1, max_candidates].
  struct UserQuery {
    std::string line;
    int k = 0;
  };
  absl::StatusOr<UserQuery> ParseTopK(std::string_view body) const;

 private:
  // The header index of input column `column`, or InvalidArgument naming `where` and why not.
  absl::StatusOr<int> CheckCell(const std::string& where, const std::string& column,
                                const std::string& value) const;
  // Fills the user's cells (and which columns the user gave) from a request's user map.
  template <typename ColumnMap>
  absl::Status FillUserCells(const ColumnMap& user, std::vector<std::string>* cells,
                             std::vector<bool>* given) const;

  // The lines of a request in the columnar form (candidate_columns), one per candidate.
  absl::StatusOr<std::vector<std::string>> ParseCandidateColumns(
      const proto::ScoreRequest& request) const;

  int max_candidates_;
  std::string header_;
  std::vector<std::string> header_columns_;  // the dataset's column names, in config order
  int num_columns_ = 0;
  // The input columns (not LABEL or IGNORED) by name: their index in the header.
  absl::flat_hash_map<std::string, int> input_column_;
  // The other columns by name, with the reason they cannot be given.
  absl::flat_hash_map<std::string, std::string> not_input_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_SERVE_SCORE_REQUEST_H_
