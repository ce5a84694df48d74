#include "worker/tools/describe_flags.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "worker/tools/describe.h"

DEFINE_string(input, "", "A TSV file (plain or gzip) with a header line: the data to describe.");
DEFINE_uint64(lines, granary::kDefaultDescribeLines, "Data lines sampled after the header.");
DEFINE_string(labels, "",
              "Comma-separated LABEL columns; empty: columns named like a label (click, "
              "purchase, label, target, rating, ...) holding numbers.");
DEFINE_string(train_files, "train-*", "The job's train file pattern, relative to --data_dir.");
DEFINE_string(eval_files, "eval*", "The job's eval file pattern, relative to --data_dir.");

namespace granary {

std::string DescribeFlagsUsage() {
  return absl::StrCat("--input=FILE [--lines=", kDefaultDescribeLines,
                      "] [--labels=a,b] [--train_files=train-*] [--eval_files=eval*]");
}

absl::Status RunDescribeFromFlags(const std::string& output_dir, std::ostream* out) {
  if (FLAGS_input.empty() || output_dir.empty()) {
    return absl::InvalidArgumentError("describe: --input and --output_dir are required");
  }
  DescribeRun run;
  run.input = FLAGS_input;
  run.output_dir = output_dir;
  run.sample_lines = FLAGS_lines;
  run.guess.label_columns = absl::StrSplit(FLAGS_labels, ',', absl::SkipEmpty());
  run.starter.train_files = FLAGS_train_files;
  run.starter.eval_files = FLAGS_eval_files;
  absl::StatusOr<std::vector<std::string>> report = Describe(run);
  if (!report.ok()) return report.status();
  for (const std::string& line : *report) *out << line << "\n";
  return absl::OkStatus();
}

}  // namespace granary
