// granary_describe: the configs of a new dataset on the first try. Reads a TSV file's header
// and first --lines lines, guesses every column's role (worker/tools/dataset_guess.h has the
// rules) and writes dataset.pbtxt, job.pbtxt and cluster.pbtxt into --output_dir, printing
// what it guessed and why, so the user can edit them and train:
//   granary_describe --input=/data/train-00.tsv --output_dir=/tmp/myjob
//   launch/local.sh --config /tmp/myjob/cluster.pbtxt --job train --worker_flags
//       "--job_config=/tmp/myjob/job.pbtxt --data_dir=/data --output_dir=/tmp/myjob/run"
// `granary_worker --job=describe` runs the same (worker/tools/describe_flags.h).
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/process_init.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "worker/tools/describe_flags.h"

DEFINE_string(output_dir, "", "Where dataset.pbtxt, job.pbtxt and cluster.pbtxt are written.");

int main(int argc, char** argv) {
  const std::string usage = "granary_describe --output_dir=DIR " + granary::DescribeFlagsUsage();
  granary::InitProcess(usage.c_str(), &argc, &argv);
  const absl::Status status = granary::RunDescribeFromFlags(FLAGS_output_dir, &std::cout);
  if (status.ok()) return EXIT_SUCCESS;
  LOG(ERROR) << status.message();
  return EXIT_FAILURE;
}
