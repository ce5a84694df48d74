// SchedulerClient: a node's link to the scheduler (membership, heartbeats, barriers,
// dead-node notices, shutdown).
//
// Register() joins the cluster and blocks until the scheduler publishes the ClusterView (rank,
// every node's address, the shard map, the table configs). From then on a background thread
// sends heartbeats, and delivers the scheduler's notices to the callbacks.
//
// Thread-safe: all public methods may be called from any thread after Register() succeeded.
// Callbacks run on the background thread and must not call back into this object's blocking
// methods (Barrier, WaitForShutdown).
#ifndef GRANARY_COMMON_SCHEDULER_CLIENT_H_
#define GRANARY_COMMON_SCHEDULER_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/message.h"
#include "common/proto/message.pb.h"
#include "zmq.hpp"

namespace granary {

struct SchedulerClientOptions {
  // "host:port" of the scheduler.
  std::string scheduler_address;
  // Must equal the scheduler's; messages of other clusters are rejected.
  std::string cluster_id = "granary";
  // This node's role, and the address it serves on (servers; port 0 for workers).
  proto::Role role = proto::WORKER;
  std::string host = "127.0.0.1";
  int port = 0;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Without any message from the scheduler for this long, the scheduler is reported lost.
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // How long Register() waits for the whole cluster to form.
  absl::Duration register_timeout = absl::Seconds(60);
};

class SchedulerClient {
 public:
  SchedulerClient(zmq::context_t* context, SchedulerClientOptions options);
  ~SchedulerClient();  // Stops the background thread.
  SchedulerClient(const SchedulerClient&) = delete;
  SchedulerClient& operator=(const SchedulerClient&) = delete;

  // Sends REGISTER and waits for the ClusterView. DeadlineExceeded naming the scheduler if it
  // does not arrive within register_timeout; FailedPrecondition if the scheduler refused us.
  absl::Status Register();

  // The view received by Register(). REQUIRES: Register() succeeded.
  const proto::ClusterView& view() const { return view_; }
  int rank() const { return view_.you().rank(); }

  // Blocks until every live member of `group` ("workers", "servers" or "all") reached the
  // barrier named `name`. DeadlineExceeded after `timeout`; Aborted if the scheduler reports a
  // member dead meanwhile, the cluster shuts down, or the scheduler is lost.
  absl::Status Barrier(const std::string& name, const std::string& group, absl::Duration timeout);

  // Tells the scheduler this worker finished its job (the scheduler shuts the cluster down
  // once every worker did).
  void ReportJobDone();

  // Blocks until the scheduler orders shutdown (returns OK) or is lost (Unavailable), or
  // `timeout` passes (DeadlineExceeded).
  absl::Status WaitForShutdown(absl::Duration timeout);
  bool shutdown_requested() const { return shutdown_requested_.load(); }

  // Called on the background thread when the scheduler reports `node` dead.
  void SetNodeDeadCallback(std::function<void(const proto::NodeInfo& node)> callback);

 private:
  void Run();
  void HandleIncoming(Message&& message);
  proto::Header NewHeader(proto::Command command) const;
  void Enqueue(proto::Header header);

  zmq::context_t* const context_;
  const SchedulerClientOptions options_;
  const std::string wakeup_endpoint_;
  zmq::socket_t dealer_;
  proto::ClusterView view_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<proto::Header> outbox_;                 // guarded by mutex_
  std::map<std::string, std::string> barrier_done_;  // name -> error ("" = released)
  std::function<void(const proto::NodeInfo&)> node_dead_callback_;
  zmq::socket_t wakeup_sender_;  // guarded by mutex_

  std::atomic<bool> shutdown_requested_{false};
  std::atomic<bool> scheduler_lost_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_SCHEDULER_CLIENT_H_
