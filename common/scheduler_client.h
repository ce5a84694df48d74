// SchedulerClient: a node's link to the scheduler (membership, heartbeats, barriers,
// dead-node notices, shutdown), and a control client's one-shot requests (ControlRequest).
//
// Register() joins the cluster and blocks until the scheduler publishes the ClusterView (rank,
// every node's address, the shard map, the table configs), heartbeating meanwhile. From then on
// a background thread sends heartbeats, and delivers the scheduler's notices to the callbacks.
//
// Every header it sends carries this node's incarnation (NodeInfo.incarnation, from the view;
// 0 before it) in sender_incarnation.
//
// Thread-safe: all public methods may be called from any thread after Register() succeeded.
// Callbacks run on the background thread and must not call back into this object's blocking
// methods (Barrier, WaitForShutdown) nor set a callback.
#ifndef GRANARY_COMMON_SCHEDULER_CLIENT_H_
#define GRANARY_COMMON_SCHEDULER_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/curve_keys.h"
#include "common/message.h"
#include "common/proto/message.pb.h"
#include "common/socket_options.h"
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
  // Servers: the ipc:// endpoint they also serve on for workers of their host
  // (ParameterServer::ipc_endpoint, common/ipc_endpoint.h); empty: TCP only. Register()
  // advertises it with this host's LocalHostId().
  std::string ipc_endpoint;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Without any message from the scheduler for this long, the scheduler is reported lost.
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // How long Register() waits for the whole cluster to form (a silent scheduler ends the wait
  // sooner, after heartbeat_timeout).
  absl::Duration register_timeout = absl::Seconds(60);
  // The cluster's CURVE keys (common/curve_keys.h); nullopt: an unauthenticated link.
  std::optional<CurveKeys> curve;
  // The bounds of the link's socket (common/socket_options.h).
  SocketLimits socket_limits;
};

class SchedulerClient {
 public:
  SchedulerClient(zmq::context_t* context, SchedulerClientOptions options);
  ~SchedulerClient();  // Stops the background thread.
  SchedulerClient(const SchedulerClient&) = delete;
  SchedulerClient& operator=(const SchedulerClient&) = delete;

  // A one-shot control request (role CONTROL, e.g. granary_ctl), without Register(): sends
  // `command` and waits for the scheduler's reply. Returns the reply's header (the caller checks
  // its command); FailedPrecondition with the scheduler's error if it answered ERROR_REPLY;
  // DeadlineExceeded if no reply came within `timeout`; InvalidArgument if the scheduler's
  // address cannot be connected; the error if the request cannot be sent or the reply not be
  // decoded. Each error names the scheduler. REQUIRES: Register() was not called.
  absl::StatusOr<proto::Header> ControlRequest(proto::Command command, absl::Duration timeout);

  // Sends REGISTER and waits for the ClusterView, heartbeating meanwhile. DeadlineExceeded
  // naming the scheduler if it does not arrive within register_timeout; Unavailable naming it
  // if the scheduler is silent (no heartbeat ack) for heartbeat_timeout meanwhile;
  // FailedPrecondition if the scheduler refused us; Aborted if it shut down first.
  absl::Status Register();

  // The view received by Register(). REQUIRES: Register() succeeded.
  const proto::ClusterView& view() const { return view_; }
  int rank() const { return view_.you().rank(); }

  // Blocks until every live member of `group` ("workers", "servers" or "all") reached the
  // barrier named `name`. DeadlineExceeded after `timeout`; Aborted if the scheduler reports a
  // member dead meanwhile, the cluster shuts down, or the scheduler is lost.
  absl::Status Barrier(const std::string& name, const std::string& group, absl::Duration timeout);

  // Tells the scheduler this worker finished its job, with its outcome (the scheduler shuts
  // the cluster down once every worker did; a failed job makes the whole run fail, and a day
  // is not closed).
  void ReportJobDone(const absl::Status& outcome = absl::OkStatus());

  // Work queues (scheduler/work_queue.h). Each call blocks until the scheduler answers; it
  // fails with DeadlineExceeded after `timeout`, Unavailable if the scheduler is lost, Aborted
  // once shutdown started, and with the scheduler's error (FailedPrecondition) if it refused.

  // Defines queue spec.name() (idempotent; every worker must give the same chunks).
  absl::Status OpenQueue(const proto::WorkQueueSpec& spec, absl::Duration timeout);
  // The next chunk of queue `name` for this worker, or nullopt once every chunk of the queue
  // is finished. While the remaining chunks are with other workers it waits, since one of
  // them may die and its chunks come back. A chunk whose answer arrives after its call timed
  // out is not lost: the next call for the queue returns it.
  absl::StatusOr<std::optional<proto::Chunk>> NextChunk(const std::string& name,
                                                        absl::Duration timeout);
  // Reports chunk `chunk_id` of queue `name` trained, with its final `progress` if given
  // (progress.queue() not empty).
  absl::Status FinishChunk(const std::string& name, uint64_t chunk_id, absl::Duration timeout,
                           const proto::ChunkProgress& progress = proto::ChunkProgress());
  // Reports how far this worker trained a chunk (scheduler/work_queue.h "Progress"). Returns
  // at once: the report travels in the background, and replaces a report of the same chunk
  // not sent yet, so the scheduler gets the latest one a round trip at most behind.
  void ReportChunkProgress(const proto::ChunkProgress& progress);
  // The totals the scheduler sent with queue `name`'s "drained" answer; empty before it came.
  proto::QueueTotals DrainedQueueTotals(const std::string& name);

  // Step clocks (scheduler/step_clocks.h; bounded staleness). Reports return at
  // once: the report travels in the background.

  // This worker finished `steps` steps of clock `name` (counted from 0, never decreasing).
  void ReportClock(const std::string& name, int64_t steps);
  // This worker trains no more steps of clock `name`: it stops holding the others back.
  void ReportClockDone(const std::string& name);
  // Blocks until the minimum of clock `name` over the workers that count is >= `steps`;
  // returns at once (no round trip) if the last minimum the scheduler pushed already is.
  // Before any push a clock's minimum is 0. DeadlineExceeded after `timeout`, naming the
  // workers at the minimum; Aborted once shutdown started; Unavailable if the scheduler is
  // lost.
  absl::Status WaitForClock(const std::string& name, int64_t steps, absl::Duration timeout);
  // Turns in rank order (bulk-synchronous pushes, worker/step_clock.h): blocks until every
  // worker that counts for clock `name` reached `steps` - 1 and those among them ranked below
  // this worker reached `steps`, i.e. the last minimum pushed is >= steps, or is steps - 1
  // with no rank below this one's at it. Errors as WaitForClock.
  absl::Status WaitForClockTurn(const std::string& name, int64_t steps, absl::Duration timeout);

  // The next order of the scheduler to this node (CHECKPOINT), in arrival order. Blocks until
  // one arrives; Aborted once shutdown is ordered, Unavailable if the scheduler is lost,
  // DeadlineExceeded after `timeout`. Orders may take long: they are carried out on the
  // caller's thread while this object's thread keeps heartbeating.
  absl::StatusOr<proto::Header> WaitForOrder(absl::Duration timeout);
  // Answers `order` with ACK and the order's results (fields of `results`, e.g. shrink), or
  // with ERROR_REPLY carrying `outcome`'s message.
  void AnswerOrder(const proto::Header& order, const absl::Status& outcome,
                   const proto::Header& results = proto::Header());

  // Blocks until the scheduler orders shutdown (returns OK) or is lost (Unavailable), or
  // `timeout` passes (DeadlineExceeded).
  absl::Status WaitForShutdown(absl::Duration timeout);
  bool shutdown_requested() const { return shutdown_requested_.load(); }

  // Called on the background thread when the scheduler reports `node` dead; and once with
  // this node's own NodeInfo (view().you()) when the scheduler fenced this node. Replaces the
  // callback set before; once it returns, that one is not running and never runs again (it
  // waits for a running call to end), so clearing it (nullptr) before destroying what the
  // callback uses is safe whatever the order of destruction.
  void SetNodeDeadCallback(std::function<void(const proto::NodeInfo& node)> callback);
  // Called on the background thread when the scheduler reports that `node`, a replacement
  // worker with a new incarnation, joined the running cluster (NODE_JOINED). Replaced like
  // SetNodeDeadCallback's.
  void SetNodeJoinedCallback(std::function<void(const proto::NodeInfo& node)> callback);

  // Fencing: once the scheduler declared this node dead (it was silent for heartbeat_timeout,
  // e.g. stopped or partitioned), it answers the node's next message with SHUTDOWN naming the
  // node. Then shutdown_requested() is true, every wait fails at once, and this returns the
  // scheduler's reason ("fenced: worker 1 incarnation 4 was declared dead by the scheduler (no
  // heartbeat for 12.1s ...)"); empty while this node is not fenced. The node must exit with an
  // error: its work was handed to others.
  std::string fenced_reason() const;

  // The ranks of the workers the scheduler reported dead (NODE_DEAD) and not since replaced
  // (NODE_JOINED), ascending. The scheduler sends a death before the barrier releases it lets
  // go: after Barrier() returned, the workers not listed here are those alive when the barrier
  // released.
  std::vector<int> dead_workers() const;

 private:
  // Connects the dealer socket to the scheduler. InvalidArgument naming it if that fails.
  absl::Status Connect();
  void Run();
  void HandleIncoming(Message&& message);
  proto::Header NewHeader(proto::Command command) const;
  void Enqueue(proto::Header header);
  // Sends `request` with a fresh request id and waits for its reply (see OpenQueue).
  absl::StatusOr<proto::Header> Call(proto::Header request, absl::Duration timeout);
  // Call that also returns nullopt as soon as `stop_waiting` (evaluated with mutex_ held)
  // is true; the reply then counts as late.
  absl::StatusOr<std::optional<proto::Header>> CallUnless(
      proto::Header request, absl::Duration timeout, const std::function<bool()>& stop_waiting);
  // Delivers a reply to its Call; a CHUNK nobody waits for any more goes to unclaimed_chunks_.
  // REQUIRES: mutex_ held.
  void DeliverReplyLocked(proto::Header reply);
  // Blocks until reached(minimum, clock) holds for the last MIN_CLOCK of clock `name` (before
  // any: minimum 0 and clock null); `waiting_for` says what for in the timeout's error.
  absl::Status WaitForClockUntil(const std::string& name,
                                 const std::function<bool(int64_t, const proto::Clock*)>& reached,
                                 const std::string& waiting_for, absl::Duration timeout);

  zmq::context_t* const context_;
  const SchedulerClientOptions options_;
  const std::string wakeup_endpoint_;
  zmq::socket_t dealer_;
  proto::ClusterView view_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string fenced_reason_;                        // guarded by mutex_; see fenced_reason()
  std::set<int> dead_workers_;                       // guarded by mutex_; see dead_workers()
  std::deque<proto::Header> outbox_;                 // guarded by mutex_
  std::map<std::string, std::string> barrier_done_;  // name -> error ("" = released)
  uint64_t next_request_id_ = 1;
  // Calls waiting for their reply, by request id: the reply once it came.
  std::map<uint64_t, std::optional<proto::Header>> calls_;
  // Chunks handed to this worker whose NEXT_CHUNK call had given up, by queue name.
  std::map<std::string, std::deque<proto::Chunk>> unclaimed_chunks_;
  std::map<std::string, proto::QueueTotals> drained_totals_;  // by queue name
  std::deque<proto::Header> orders_;                          // from the scheduler, not yet taken
  std::map<std::string, proto::Clock> min_clocks_;            // the last MIN_CLOCK of each clock
  // Held while a callback runs and while one is replaced (see SetNodeDeadCallback).
  std::mutex callback_mutex_;
  std::function<void(const proto::NodeInfo&)> node_dead_callback_;    // guarded by callback_mutex_
  std::function<void(const proto::NodeInfo&)> node_joined_callback_;  // guarded by callback_mutex_
  zmq::socket_t wakeup_sender_;                                       // guarded by mutex_

  std::atomic<bool> shutdown_requested_{false};
  std::atomic<bool> scheduler_lost_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_SCHEDULER_CLIENT_H_
