// Fuzz target: the TSV line parser (worker/batch_parser.h) under a fixed dataset config with
// a column of every role. The input's first line is tried as a file header (MatchHeader);
// every line, the first too when it is no header, is then parsed under the config's own
// header order, as a reader does with each line of a file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "worker/batch_parser.h"

namespace {

// Every role, a sequence of both step-field kinds, a NUMERIC transform and a tight length
// bound, so that the parser's bounds are within reach of short inputs.
constexpr char kDatasetConfig[] = R"pb(
  columns { name: "click" role: LABEL }
  columns { name: "user" role: CATEGORICAL }
  columns { name: "genres" role: MULTI_CATEGORICAL hash_space: "genre" }
  columns {
    name: "history"
    role: SEQUENCE
    max_sequence_length: 3
    max_sequence_steps: 5
    step_fields { name: "item" kind: CATEGORICAL }
    step_fields { name: "genre" kind: CATEGORICAL hash_space: "genre" }
    step_fields { name: "score" kind: NUMERIC }
  }
  columns {
    name: "price"
    role: NUMERIC
    transform { log1p: true mean: 1 stddev: 2 clip: 5 }
  }
  columns { name: "note" role: IGNORED }
  max_abs_numeric: 1000
  max_line_bytes: 4096
)pb";
constexpr char kHeader[] = "click\tuser\tgenres\thistory\tprice\tnote";
constexpr char kFileName[] = "fuzz.tsv";
constexpr int kBatchSize = 4;

struct Parser {
  Parser() : parser(Config(), kBatchSize, {{"click", granary::kBinaryLabelClasses, "ctr"}}) {
    absl::StatusOr<granary::BatchParser::Layout> layout = parser.MatchHeader(kHeader, kFileName);
    if (!layout.ok()) std::abort();
    header_layout = *std::move(layout);
  }
  static granary::proto::DatasetConfig Config() {
    granary::proto::DatasetConfig config;
    if (!granary::ParseTextProto(kDatasetConfig, "fuzz dataset", &config).ok() ||
        !granary::ValidateDatasetConfig(config, "fuzz dataset", nullptr).ok()) {
      std::abort();
    }
    return config;
  }
  granary::BatchParser parser;
  granary::BatchParser::Layout header_layout;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Parser* const fixed = new Parser();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= input.size();) {
    const size_t end = std::min(input.find('\n', start), input.size());
    lines.push_back(input.substr(start, end - start));
    start = end + 1;
  }

  absl::StatusOr<granary::BatchParser::Layout> own =
      fixed->parser.MatchHeader(lines.front(), kFileName);
  granary::BatchParser::Layout* layout = own.ok() ? &*own : &fixed->header_layout;
  granary::Batch batch = fixed->parser.NewBatch();
  std::string reason;
  for (size_t i = own.ok() ? 1 : 0; i < lines.size(); ++i) {
    if (batch.size >= kBatchSize) batch = fixed->parser.NewBatch();
    (void)fixed->parser.ParseLine(lines[i], layout, &batch, &reason);
  }
  return 0;
}
