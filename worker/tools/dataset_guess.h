// Guessing a dataset config from a TSV header and its first lines: the rules of
// `granary_describe` (worker/tools/describe.cc), all in one place.
//
//   absl::StatusOr<DatasetGuess> guess = GuessDataset(header, lines, "train-00.tsv", {});
//   for (const std::string& reason : guess->reasons) std::cout << reason << "\n";
//
// Each column's role comes from the first rule that applies (the reason names it):
//   1. no value in the sampled lines, or a name with a time word (timestamp, time, date, ts)
//      and not listed as a label                           -> IGNORED
//   2. a label: named in DescribeOptions::label_columns, or, when none are, a name with a
//      label word (click, purchase, label, target, rating, class, ...) and only numbers:
//      0/1 -> LABEL of a BINARY task; integers 0..K-1 (K <= kMaxGuessedClasses) -> LABEL of a
//      MULTICLASS task of K classes; other numbers -> LABEL of a REGRESSION task
//   3. a cell with ';'                                     -> SEQUENCE; each step field
//      CATEGORICAL sharing the hash space of the CATEGORICAL column most of its tokens appear
//      in (so a history's item and the target item share rows, even when ids are integers),
//      else NUMERIC if all its values are numbers, else CATEGORICAL
//   4. a cell with ','                                     -> MULTI_CATEGORICAL
//   5. a name with the word "id" (user_id, itemid)         -> CATEGORICAL
//   6. integers of at most kMaxCategoricalIntegers distinct values (an hour, a bucket)
//                                                          -> CATEGORICAL
//   7. numbers that vary                                   -> NUMERIC, standardized by the
//      sampled mean and stddev after log1p when all are >= 0 and their skewness exceeds
//      kLog1pSkewness, then clipped to +-kStandardizedClip; a constant -> IGNORED
//   8. anything else                                       -> CATEGORICAL
//
// Thread-safe: pure functions.
#ifndef GRANARY_WORKER_TOOLS_DATASET_GUESS_H_
#define GRANARY_WORKER_TOOLS_DATASET_GUESS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"

namespace granary {

// Rule 2: the most classes a MULTICLASS label is guessed to have.
inline constexpr uint32_t kMaxGuessedClasses = 100;
// Rule 6: integer columns with at most this many distinct sampled values are categories.
inline constexpr size_t kMaxCategoricalIntegers = 32;
// Rule 7: a non-negative column whose sample skewness exceeds this is log1p-transformed
// (a log-normal of sigma 0.5 has skewness 1.75; a uniform one 0).
inline constexpr double kLog1pSkewness = 1.0;
// Rule 7: standardized values are clipped to +-this many standard deviations.
inline constexpr double kStandardizedClip = 5.0;
// Rule 3: a step field shares a CATEGORICAL column's hash space when at least this share of
// its distinct sampled tokens appear in that column.
inline constexpr double kSharedTokenShare = 0.5;
// When the largest sampled |number| exceeds kDefaultMaxAbsNumeric / this, the guess sets
// max_abs_numeric to this times that number, so that rarer larger values are not bad lines.
inline constexpr double kMaxAbsNumericHeadroom = 100;

struct DescribeOptions {
  // The LABEL columns; empty = guessed by name (rule 2).
  std::vector<std::string> label_columns;
};

// A task the guessed labels suggest.
struct TaskGuess {
  std::string label_column;
  proto::TaskConfig::HeadKind head = proto::TaskConfig::BINARY;
  uint32_t num_classes = 0;  // MULTICLASS only
};

struct DatasetGuess {
  proto::DatasetConfig dataset;  // passes ValidateDatasetConfig
  std::vector<TaskGuess> tasks;  // one per LABEL column, in header order
  // One line per column, "name: ROLE (why)", in header order, then notes (skipped lines).
  std::vector<std::string> reasons;
};

// Whether one of the words of column name `name` (split at ' ', '_', '-', '.', ':', '/'),
// lower-cased, is one of `words` (lower case): "is_Click" has the word "click", "clickbait" not.
bool NameHasWord(const std::string& name, absl::Span<const char* const> words);

// Guesses the dataset config of `header` (a TSV header line) from `lines` (data lines under
// it; lines whose cell count differs from the header's are skipped and counted in a note).
// InvalidArgument naming "<file_name>:1" for an empty or duplicate header name or an unknown
// column in options.label_columns; naming the column for a listed label column that holds a
// non-number; and naming the file if no line has the header's cell count.
absl::StatusOr<DatasetGuess> GuessDataset(std::string_view header,
                                          const std::vector<std::string>& lines,
                                          const std::string& file_name,
                                          const DescribeOptions& options);

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_DATASET_GUESS_H_
