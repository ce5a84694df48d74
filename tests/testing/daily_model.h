// The daily model the tests of launch/daily.sh train (tests/cluster/daily_test.cc,
// tests/cluster/day_close_fault_test.cc): its cluster and job configs, its generated days of
// drifting ids, and a run of daily.sh on them. Each test keeps its own eviction settings, number
// of servers and workers, and extra flags.
#ifndef GRANARY_TESTS_TESTING_DAILY_MODEL_H_
#define GRANARY_TESTS_TESTING_DAILY_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace granary {
namespace daily_model {

// Day d (from 0) holds ids kDrift * d .. kDrift * d + kIdsPerDay - 1, each kRowsPerId times.
constexpr int kDrift = 20;
constexpr int kIdsPerDay = 40;
constexpr int kRowsPerId = 4;
// How long RunDay waits for daily.sh, and the --timeout it gives it (seconds).
constexpr absl::Duration kDayTimeout = absl::Seconds(120);
constexpr int kDailyTimeoutSeconds = 100;

// The cluster config: table "emb" (dim 2, NORMAL initializer scale 0.1 seed 7, SGD 0.5) with
// `eviction` as its eviction block's fields, and table "dense" (dim 32, Adam 0.01).
std::string ClusterConfig(const std::string& eviction);

// The job: a click task over the categorical column "id", batches of 16, one epoch, training
// and evaluating on part-*, metrics in metrics.jsonl.
extern const char kJobConfig[];

// The key of id `id` in "emb".
uint64_t IdKey(int id);

// Writes <root>/cluster.pbtxt (`cluster_config`), <root>/job.pbtxt (kJobConfig) and
// <root>/data/<day>/part-00000 for each of `days`: day d holds the ids above, each kRowsPerId
// times, with the click (id + r) % 2 in its r-th copy.
void WriteModelFiles(const std::string& root, const std::string& cluster_config,
                     const std::vector<std::string>& days);

// One run of launch/daily.sh on the files WriteModelFiles wrote under `root`.
struct DayRun {
  std::string root;
  std::string model_dir;
  int servers = 1;
  int workers = 1;
  // Flags for every node, after daily.sh's own (after "--"); none if empty.
  std::vector<std::string> node_flags;
};

// Runs daily.sh for `day` with `more` arguments after the ones `run` makes (so they override
// them), logging to <root>/daily-<day>-<n>.log; returns its exit code (-1 if it could not start
// or did not finish in kDayTimeout, with a test failure), *log its output.
int RunDay(const DayRun& run, const std::string& day, const std::vector<std::string>& more,
           std::string* log);

}  // namespace daily_model
}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_DAILY_MODEL_H_
