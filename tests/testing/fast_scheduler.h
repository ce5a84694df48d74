// A scheduler for tests that run it on a thread of the test process (tests/scheduler/,
// tests/ps/server_test.cc, tests/worker/batch_source_test.cc): options under which it notices a
// silent node within a second, clients of it on 127.0.0.1, and their registration.
#ifndef GRANARY_TESTS_TESTING_FAST_SCHEDULER_H_
#define GRANARY_TESTS_TESTING_FAST_SCHEDULER_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/scheduler_client.h"
#include "scheduler/scheduler.h"

namespace granary {

// A node silent for kFastHeartbeatTimeout is declared dead, checked every kFastCheckInterval;
// a cluster and a client's registration get kFastRegisterTimeout; clients heartbeat every
// kFastHeartbeatInterval.
constexpr absl::Duration kFastHeartbeatTimeout = absl::Milliseconds(600);
constexpr absl::Duration kFastCheckInterval = absl::Milliseconds(50);
constexpr absl::Duration kFastRegisterTimeout = absl::Seconds(20);
constexpr absl::Duration kFastHeartbeatInterval = absl::Milliseconds(100);
// How long WaitForSchedulerPort waits for the scheduler to bind.
constexpr absl::Duration kSchedulerBindTimeout = absl::Seconds(10);

// The options of a scheduler of cluster `cluster_id` with `servers` and `workers`, the fast
// timeouts above and no tables (the caller sets config).
SchedulerOptions FastSchedulerOptions(const std::string& cluster_id, int servers, int workers);

// Whether `scheduler`, started on another thread, bound its port within kSchedulerBindTimeout.
bool WaitForSchedulerPort(const Scheduler& scheduler);

// The options of a client of `scheduler` (bound) in cluster `cluster_id` as `role` listening
// on `port` (0 for none), heartbeating every kFastHeartbeatInterval.
SchedulerClientOptions FastClientOptions(const Scheduler& scheduler, const std::string& cluster_id,
                                         proto::Role role, int port);

// Registers all clients concurrently (Register blocks until the cluster forms); a test failure
// for each that fails.
void RegisterAll(const std::vector<SchedulerClient*>& clients);

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_FAST_SCHEDULER_H_
