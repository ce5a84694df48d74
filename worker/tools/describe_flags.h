// The command line of a describe run (worker/tools/describe.h), one home for the two programs
// that offer it: granary_describe and `granary_worker --job=describe`. This file defines the
// flags --input, --lines, --labels, --train_files and --eval_files; each program defines its
// own --output_dir (granary_worker's also names the trainer's output folder) and passes it in.
//
// Thread-compatible: reads the process's flags.
#ifndef GRANARY_WORKER_TOOLS_DESCRIBE_FLAGS_H_
#define GRANARY_WORKER_TOOLS_DESCRIBE_FLAGS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace granary {

// The flags' usage, for a program's usage line: "--input=FILE [--lines=2000] ...".
std::string DescribeFlagsUsage();

// Runs Describe with the run the flags and `output_dir` give and writes its report to *out, a
// line per guess. Errors: InvalidArgument if --input or output_dir is empty; Describe's.
absl::Status RunDescribeFromFlags(const std::string& output_dir, std::ostream* out);

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_DESCRIBE_FLAGS_H_
