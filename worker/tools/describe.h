// Describing a new dataset: read a TSV file's header and first lines, guess its dataset
// config (worker/tools/dataset_guess.h) and write it with a starter job and cluster config
// (worker/tools/starter_configs.h), ready for launch/local.sh. What `granary_describe` runs.
//
// Thread-safe: no shared state; concurrent runs must write to different folders.
#ifndef GRANARY_WORKER_TOOLS_DESCRIBE_H_
#define GRANARY_WORKER_TOOLS_DESCRIBE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/tools/dataset_guess.h"
#include "worker/tools/starter_configs.h"

namespace granary {

// File names Describe writes into DescribeRun::output_dir.
inline constexpr char kDescribedDatasetFile[] = "dataset.pbtxt";
inline constexpr char kDescribedJobFile[] = "job.pbtxt";
inline constexpr char kDescribedClusterFile[] = "cluster.pbtxt";
// Default of DescribeRun::sample_lines.
inline constexpr uint64_t kDefaultDescribeLines = 2000;

struct DescribeRun {
  std::string input;                              // a TSV file, plain or gzip, with a header line
  std::string output_dir;                         // created if missing
  uint64_t sample_lines = kDefaultDescribeLines;  // data lines read after the header (>= 1)
  DescribeOptions guess;
  StarterOptions starter;  // starter.dataset_config is set to kDescribedDatasetFile
};

// Reads run.input's header and first run.sample_lines lines, guesses, checks the three configs
// by the rules the roles load them with (a bug otherwise: Internal), writes them atomically
// into run.output_dir (kDescribed*File) and returns what was guessed and why, a line each.
// Errors: the input's (NotFound, DataLoss naming the file), an empty file or no header
// (InvalidArgument naming the file), sample_lines 0, GuessDataset's and MakeStarterConfigs'
// errors, a failed write (naming the path).
absl::StatusOr<std::vector<std::string>> Describe(const DescribeRun& run);

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_DESCRIBE_H_
