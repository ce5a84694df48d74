// granary_describe: the configs of a new dataset on the first try. Reads a TSV file's header
// and first --lines lines, guesses every column's role (worker/tools/dataset_guess.h has the
// rules) and writes dataset.pbtxt, job.pbtxt and cluster.pbtxt into --output_dir, printing
// what it guessed and why, so the user can edit them and train:
//   granary_describe --input=/data/train-00.tsv --output_dir=/tmp/myjob
//   launch/local.sh --config /tmp/myjob/cluster.pbtxt --job train --worker_flags
//       "--job_config=/tmp/myjob/job.pbtxt --data_dir=/data --output_dir=/tmp/myjob/run"
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/str_split.h"
#include "common/process_init.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "worker/tools/describe.h"

DEFINE_string(input, "", "A TSV file (plain or gzip) with a header line: the data to describe.");
DEFINE_string(output_dir, "", "Where dataset.pbtxt, job.pbtxt and cluster.pbtxt are written.");
DEFINE_uint64(lines, granary::kDefaultDescribeLines, "Data lines sampled after the header.");
DEFINE_string(labels, "",
              "Comma-separated LABEL columns; empty: columns named like a label (click, "
              "purchase, label, target, rating, ...) holding numbers.");
DEFINE_string(train_files, "train-*", "The job's train file pattern, relative to --data_dir.");
DEFINE_string(eval_files, "eval*", "The job's eval file pattern, relative to --data_dir.");

int main(int argc, char** argv) {
  granary::InitProcess(
      "granary_describe --input=FILE --output_dir=DIR [--lines=2000] [--labels=a,b] "
      "[--train_files=train-*] [--eval_files=eval*]",
      &argc, &argv);
  if (FLAGS_input.empty() || FLAGS_output_dir.empty()) {
    LOG(ERROR) << "--input and --output_dir are required";
    return EXIT_FAILURE;
  }
  granary::DescribeRun run;
  run.input = FLAGS_input;
  run.output_dir = FLAGS_output_dir;
  run.sample_lines = FLAGS_lines;
  run.guess.label_columns = absl::StrSplit(FLAGS_labels, ',', absl::SkipEmpty());
  run.starter.train_files = FLAGS_train_files;
  run.starter.eval_files = FLAGS_eval_files;
  absl::StatusOr<std::vector<std::string>> report = granary::Describe(run);
  if (!report.ok()) {
    LOG(ERROR) << report.status().message();
    return EXIT_FAILURE;
  }
  for (const std::string& line : *report) std::cout << line << "\n";
  return EXIT_SUCCESS;
}
