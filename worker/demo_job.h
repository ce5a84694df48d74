// The push/pull demo job: every worker pushes known gradients for the same keys at the same
// time, then all check that the rows equal exactly what SGD must give. It exercises the
// whole data path (dedup, slicing, parallel sends, concurrent server updates, reassembly in
// caller order) with numbers a person can verify. It is granary_worker's default job and what
// `launch/quickstart.sh --demo` runs.
//
// Thread-compatible: runs on the calling thread.
#ifndef GRANARY_WORKER_DEMO_JOB_H_
#define GRANARY_WORKER_DEMO_JOB_H_

#include <string>

#include "absl/status/status.h"
#include "common/scheduler_client.h"
#include "worker/kv_worker.h"

namespace granary {

struct DemoJobOptions {
  std::string table = "demo";
  int num_keys = 10000;
  int rounds = 20;
  // Bounds every barrier of the job.
  absl::Duration barrier_timeout = absl::Seconds(120);
};

// What the job measured: the largest |row - expected| over all keys.
struct DemoJobResult {
  size_t keys_checked = 0;
  double max_abs_error = 0;
};

// Runs the demo on `worker`. The gradient of worker w, round r, key i, dimension d is
// (w + 1) * (1 + (i + d + r) % 4), so after all workers finish, row = initial - lr * sum.
// FailedPrecondition unless the cluster has an SGD table named options.table; DataLoss naming
// the first key whose row is off by more than 1e-5 (relative to the expected value, when that
// exceeds 1 in magnitude), or the error
// of any pull, push or barrier.
absl::Status RunPushPullDemo(KVWorker& worker, SchedulerClient& scheduler,
                             const DemoJobOptions& options, DemoJobResult* result);

}  // namespace granary

#endif  // GRANARY_WORKER_DEMO_JOB_H_
