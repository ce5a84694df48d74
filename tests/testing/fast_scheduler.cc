#include "tests/testing/fast_scheduler.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace granary {

SchedulerOptions FastSchedulerOptions(const std::string& cluster_id, int servers, int workers) {
  SchedulerOptions options;
  options.cluster_id = cluster_id;
  options.num_servers = servers;
  options.num_workers = workers;
  options.heartbeat_timeout = kFastHeartbeatTimeout;
  options.check_interval = kFastCheckInterval;
  options.register_timeout = kFastRegisterTimeout;
  return options;
}

bool WaitForSchedulerPort(const Scheduler& scheduler) {
  return WaitUntil([&] { return scheduler.port() != 0; }, kSchedulerBindTimeout);
}

SchedulerClientOptions FastClientOptions(const Scheduler& scheduler, const std::string& cluster_id,
                                         proto::Role role, int port) {
  SchedulerClientOptions options;
  options.scheduler_address = absl::StrCat("127.0.0.1:", scheduler.port());
  options.cluster_id = cluster_id;
  options.role = role;
  options.port = port;
  options.heartbeat_interval = kFastHeartbeatInterval;
  options.register_timeout = kFastRegisterTimeout;
  return options;
}

void RegisterAll(const std::vector<SchedulerClient*>& clients) {
  std::vector<absl::Status> statuses(clients.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients.size(); ++i) {
    threads.emplace_back([&, i] { statuses[i] = clients[i]->Register(); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) EXPECT_TRUE(status.ok()) << status;
}

}  // namespace granary
