// The main() the benchmarks share: flags and logging, the run, its exit code.
// Thread-compatible: call once, from main().
#ifndef GRANARY_TESTS_BENCH_BENCH_MAIN_H_
#define GRANARY_TESTS_BENCH_BENCH_MAIN_H_

#include <cstdlib>
#include <functional>

#include "absl/status/status.h"
#include "common/process_init.h"
#include "glog/logging.h"

namespace granary {

// Parses flags and starts logging (InitProcess with `usage`), then runs `run`. Only warnings and
// errors are logged unless --minloglevel says otherwise: the lifecycle logs of the nodes and
// tables a benchmark starts would bury its tables. Returns EXIT_SUCCESS, or EXIT_FAILURE after
// logging "<name> failed: <message>" if `run` failed.
inline int BenchmarkMain(const char* name, const char* usage, int argc, char** argv,
                         const std::function<absl::Status()>& run) {
  FLAGS_minloglevel = google::GLOG_WARNING;
  InitProcess(usage, &argc, &argv);
  const absl::Status status = run();
  if (!status.ok()) {
    LOG(ERROR) << name << " failed: " << status.message();
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

}  // namespace granary

#endif  // GRANARY_TESTS_BENCH_BENCH_MAIN_H_
