// InProcessCluster: a whole Granary cluster (scheduler, servers, worker-side clients) inside
// one process, talking over real TCP sockets on 127.0.0.1 with free ports (or, with
// InProcessClusterOptions::ipc, Unix domain sockets). For tests and
// benchmarks that need the real transport without managing processes.
//
// Thread-compatible: Start/Stop from one thread; the KVWorkers it hands out are thread-safe.
#ifndef GRANARY_TESTS_TESTING_IN_PROCESS_CLUSTER_H_
#define GRANARY_TESTS_TESTING_IN_PROCESS_CLUSTER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/curve_keys.h"
#include "common/proto/config.pb.h"
#include "common/scheduler_client.h"
#include "common/zap_handler.h"
#include "ps/server.h"
#include "scheduler/scheduler.h"
#include "worker/kv_worker.h"

namespace granary {

struct InProcessClusterOptions {
  int num_servers = 2;
  int num_workers = 1;
  proto::ClusterConfig config;
  std::string cluster_id = "in-process";
  // I/O threads of the one ZeroMQ context every node shares.
  int io_threads = 2;
  // The cluster's CURVE keys, as a production cluster uses them: every node's TCP link is
  // authenticated and encrypted with them, and a ZapHandler in the shared context admits only
  // their holders to the scheduler's and servers' sockets. nullopt: unauthenticated links (no
  // CURVE on either end), as the roles' --insecure_no_auth.
  std::optional<CurveKeys> curve;
  // Passed to every server (see ServerOptions::apply_updates).
  bool apply_updates = true;
  int server_threads = 2;
  // Passed to every server (see ServerOptions::max_request_keys, max_request_bytes,
  // max_requests_per_peer).
  size_t server_max_request_keys = ServerOptions().max_request_keys;
  size_t server_max_request_bytes = ServerOptions().max_request_bytes;
  int server_max_requests_per_peer = ServerOptions().max_requests_per_peer;
  // Servers keep RocksDB under this folder; empty: a fresh temporary folder, removed by Stop().
  std::string data_dir;
  size_t cache_bytes = size_t{64} << 20;
  absl::Duration request_timeout = absl::Seconds(30);
  int max_channels = 32;  // KVWorkerOptions::max_channels
  // Servers also serve on a socket file under <data_dir>/ipc and advertise it, so that the
  // workers (all on this host) connect over ipc:// (common/ipc_endpoint.h). false: TCP only.
  bool ipc = false;
  // KVWorkerOptions::on_encoded_keys of every worker.
  std::function<void(const std::string& table, absl::Span<const uint64_t> keys)> on_encoded_keys;
  // SchedulerOptions::checkpoint_dir and checkpoint_every_chunks; servers follow the
  // scheduler's orders (FollowScheduler) on a thread each.
  std::string checkpoint_dir;
  int checkpoint_every_chunks = 0;
  absl::Duration checkpoint_every = absl::ZeroDuration();  // SchedulerOptions::checkpoint_every
  // SchedulerOptions::day, base_dir and close_day_into.
  std::string day;
  std::string base_dir;
  std::string close_day_into;
};

class InProcessCluster {
 public:
  explicit InProcessCluster(InProcessClusterOptions options);
  ~InProcessCluster();  // Stop()
  InProcessCluster(const InProcessCluster&) = delete;
  InProcessCluster& operator=(const InProcessCluster&) = delete;

  // Starts the scheduler, binds and registers every server and worker client concurrently,
  // starts servers and KVWorkers. Fails if the cluster does not form within 30 s.
  absl::Status Start();

  // Shuts the cluster down through the scheduler and joins every thread. Idempotent.
  void Stop();

  // Waits up to `timeout` for the scheduler to end the run by itself (e.g. after closing the
  // day) and returns what its Run() returned; DeadlineExceeded if it is still running.
  absl::Status WaitForSchedulerExit(absl::Duration timeout);

  KVWorker& worker(int i) { return *workers_[i]; }
  SchedulerClient& worker_client(int i) { return *worker_clients_[i]; }
  ParameterServer& server(int i) { return *servers_[i]; }
  zmq::context_t& context() { return context_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  const InProcessClusterOptions options_;
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;  // before any socket binds; destroyed after them
  std::unique_ptr<Scheduler> scheduler_;
  std::thread scheduler_thread_;
  std::atomic<bool> scheduler_exited_{false};
  absl::Status scheduler_status_;  // valid once scheduler_exited_
  std::vector<std::unique_ptr<ParameterServer>> servers_;
  std::vector<std::unique_ptr<SchedulerClient>> server_clients_;
  std::vector<std::unique_ptr<SchedulerClient>> worker_clients_;
  std::vector<std::unique_ptr<KVWorker>> workers_;
  std::vector<std::thread> order_threads_;  // FollowScheduler, one per server
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::string data_dir_;
  bool owns_data_dir_ = false;
};

// A config with one SGD table per (name, dim), zero initial rows and learning rate `lr`.
proto::ClusterConfig SgdTablesConfig(const std::vector<std::pair<std::string, int>>& tables,
                                     float lr);

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_IN_PROCESS_CLUSTER_H_
