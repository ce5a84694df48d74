// Scheduler: the one coordinator of a Granary cluster.
//
// It waits for the configured number of servers and workers to register, assigns ranks
// (servers 0..N-1 and workers 0..M-1, in order of arrival), cuts the key space into a shard
// map and publishes a ClusterView (ranks, addresses, shard map, table configs) to every node.
// Then it watches heartbeats — a node silent for heartbeat_timeout is logged dead and reported
// to every other node — runs barriers, and shuts the whole cluster down when every worker
// reported its job done or a control client (granary_ctl) asks for it.
//
// It also keeps the work queues (scheduler/work_queue.h): workers define a queue (OPEN_QUEUE,
// every worker the same definition; a round-robin queue must deal to the cluster's number of
// workers), ask for chunks (NEXT_CHUNK: answered at once with a chunk or "drained", or held
// until a chunk comes free, e.g. one requeued from a worker that died) and report them
// finished (CHUNK_DONE).
//
// Step clocks (bounded staleness, DESIGN.md "Consistency"): a worker reports, without waiting
// for an answer, how many steps (batches) of a clock it finished (CLOCK with the count), and
// that it is done with the clock (CLOCK with done). A clock's minimum is taken over the
// workers that count: alive, not finished with their job, not done with the clock, and not
// idle in a held NEXT_CHUNK of the work queue of the clock's name (a worker waiting for a
// chunk trains nothing, so it must not hold the others back); a worker that has not reported
// counts with 0 steps, and the minimum without any worker is INT64_MAX. Whenever a minimum or
// the ranks at it change (a report, a death, a worker going idle or getting a chunk) the
// scheduler pushes both to every live worker (MIN_CLOCK), so a worker waits for the others
// only when it is actually ahead and never polls (bulk-synchronous workers also take turns
// to push by it, worker/step_clock.h). A clock every live worker is done with is forgotten.
//
// With a checkpoint_dir it takes consistent checkpoints (DESIGN.md "Durability and
// recovery"): every checkpoint_every_chunks finished chunks, every checkpoint_every, whenever
// a queue drains (an epoch or a day ends) and on CHECKPOINT_NOW (granary_ctl checkpoint). It
// pauses every queue, waits until no chunk is out (a chunk is reported finished only after its
// pushes were acknowledged, so the servers then hold exactly the finished chunks), orders every
// server to write <checkpoint>/server-<rank>, and writes the manifest (finished chunks of every
// queue) last. On start it rolls back to the newest manifest: servers restore their
// checkpoint, and a queue opened again gets its finished chunks back; without a manifest the
// servers start empty.
//
// Thread-compatible: Run() owns the object's sockets and runs on the caller's thread;
// RequestStop() may be called from any thread.
#ifndef GRANARY_SCHEDULER_SCHEDULER_H_
#define GRANARY_SCHEDULER_SCHEDULER_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/message.h"
#include "common/proto/config.pb.h"
#include "common/proto/message.pb.h"
#include "scheduler/checkpoint_store.h"
#include "scheduler/work_queue.h"
#include "zmq.hpp"

namespace granary {

struct SchedulerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port; see address_file.
  std::string cluster_id = "granary";
  int num_servers = 1;
  int num_workers = 1;
  proto::ClusterConfig config;
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // How often liveness is checked; also bounds how late a death is noticed.
  absl::Duration check_interval = absl::Milliseconds(200);
  // The cluster must form within this long, or Run() fails naming who is missing.
  absl::Duration register_timeout = absl::Seconds(60);
  // How long shutdown waits for nodes to acknowledge before giving up on them.
  absl::Duration shutdown_timeout = absl::Seconds(5);
  // If non-empty, "host:port" is written here (atomically) once the socket is bound.
  std::string address_file;
  // Consistent checkpoints go here (scheduler/checkpoint_store.h); empty: none.
  std::string checkpoint_dir;
  int checkpoint_every_chunks = 0;                         // 0: not by chunks
  absl::Duration checkpoint_every = absl::ZeroDuration();  // zero: not by time
  int keep_checkpoints = 2;
  // Servers must have written their part within this long, or the checkpoint fails; also the
  // bound on each day-close order.
  absl::Duration checkpoint_timeout = absl::Minutes(10);

  // Daily training (DESIGN.md "Daily incremental training"). The day, YYYYMMDD, is stamped on
  // the rows trained (ttl_days counts in days).
  std::string day;
  // Without a checkpoint of its own in checkpoint_dir, the run starts from this checkpoint
  // folder (the base the previous day closed) instead of empty tables.
  std::string base_dir;
  // If set (REQUIRES: day and checkpoint_dir), once every worker finished, the scheduler
  // closes the day: servers Shrink, export the day's delta to <close_day_into>/deltas/<day>/,
  // a checkpoint is taken and moved to <close_day_into>/bases/<day>, and
  // <close_day_into>/reports/<day>.close.json is written; then the cluster shuts down.
  std::string close_day_into;
};

class Scheduler {
 public:
  Scheduler(zmq::context_t* context, SchedulerOptions options);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Binds, then serves until the cluster has shut down. Returns OK after an orderly shutdown;
  // Unavailable if the port cannot be bound; DeadlineExceeded if the cluster did not form; the
  // error if the checkpoint to roll back to is unusable or closing the day failed.
  absl::Status Run();

  // Asks Run() to shut the cluster down and return. Thread-safe.
  void RequestStop() { stop_requested_ = true; }

  // The bound port; valid once address_file was written (or Run() has bound).
  int port() const { return port_.load(); }

 private:
  struct Member {
    std::string routing_id;
    proto::NodeInfo info;
    absl::Time last_seen;
    bool alive = true;
    bool job_done = false;
  };
  struct PendingBarrier {
    std::string group;
    std::set<std::string> arrived;  // routing ids
  };

  void HandleMessage(const std::string& routing_id, Message&& message);
  void HandleRegister(const std::string& routing_id, const proto::Header& header);
  void FormCluster();
  void HandleBarrier(const std::string& routing_id, const proto::Header& header);
  void HandleQueueRequest(const Member& member, const proto::Header& header);
  // Step clocks (scheduler_clock.cc).
  struct StepClock {
    std::map<int, int64_t> steps;       // finished steps, by worker rank
    std::set<int> done;                 // ranks done with the clock
    int64_t published = -1;             // the minimum last pushed (-1: none yet; workers assume 0)
    std::vector<int> published_behind;  // the ranks at it, as last pushed
  };
  void HandleClockReport(const Member& member, const proto::Header& header);
  bool CountsForClock(const Member& member, const std::string& name, const StepClock& clock) const;
  // Pushes every clock whose minimum changed to the live workers; called after every round
  // of messages and liveness checks.
  void PublishClocks();
  // Checkpoints (scheduler_checkpoint.cc).
  absl::Status RestoreNewestCheckpoint();
  // Marks the chunks the restored manifest records for `queue` finished. FailedPrecondition
  // if the manifest has the queue with other chunks.
  absl::Status RestoreQueueProgress(WorkQueue& queue) const;
  void RequestCheckpoint(const std::string& reason);
  // Moves the checkpoint in progress on; called after every round of messages.
  void AdvanceCheckpoint();
  void FinishCheckpoint(const absl::Status& outcome);
  // Orders to every server (checkpoint and day close): one round out at a time.
  void SendOrderToServers(proto::Header order);
  void HandleOrderAnswer(const Member& server, const proto::Header& answer);
  // The round's error (a server refused, died or timed out), or OK. REQUIRES: round_.
  absl::Status RoundError() const;
  bool RoundComplete() const;
  // Day close (scheduler_day.cc).
  void AdvanceDayClose();
  absl::Status PublishDay(const std::string& checkpoint_dir);
  void PauseQueues(bool paused);
  // Answers the held NEXT_CHUNK requests of `queue` that can be answered now.
  void AnswerHeldRequests(WorkQueue& queue);
  // Answers a NEXT_CHUNK request with a chunk or "drained"; false if neither is possible yet.
  bool TryAnswerNextChunk(WorkQueue& queue, const Member& member, const proto::Header& request);
  void MaybeReleaseBarriers();
  void CheckHeartbeats();
  void StartShutdown(const std::string& reason);
  void Send(const std::string& routing_id, proto::Header header);
  void SendError(const std::string& routing_id, const proto::Header& request,
                 const std::string& error);
  proto::Header NewHeader(proto::Command command) const;
  bool InGroup(const Member& member, const std::string& group) const;
  std::string DescribeMissing() const;
  absl::Status WriteAddressFile() const;

  zmq::context_t* const context_;
  const SchedulerOptions options_;
  zmq::socket_t router_;
  std::atomic<int> port_{0};
  std::atomic<bool> stop_requested_{false};

  std::vector<Member> pending_;            // registered, cluster not yet formed
  std::map<std::string, Member> members_;  // by routing id, after formation
  bool formed_ = false;
  proto::ClusterView view_;
  std::map<std::string, PendingBarrier> barriers_;  // by barrier name
  bool shutting_down_ = false;
  absl::Time shutdown_deadline_;
  std::set<std::string> shutdown_acked_;
  std::vector<std::string> control_waiters_;  // control clients waiting for SHUTDOWN_ACK
  std::map<std::string, WorkQueue> queues_;   // by name
  struct HeldRequest {
    std::string routing_id;
    proto::Header header;
  };
  std::map<std::string, std::vector<HeldRequest>> held_requests_;  // NEXT_CHUNK, by queue
  std::map<std::string, StepClock> clocks_;                        // by name

  std::unique_ptr<CheckpointStore> checkpoints_;  // null without checkpoint_dir
  // The manifest the run restored, if any: queues opened again take their progress from it.
  std::optional<proto::CheckpointManifest> restored_;
  uint64_t next_checkpoint_id_ = 1;
  int chunks_since_checkpoint_ = 0;
  absl::Time last_checkpoint_;
  std::string checkpoint_wanted_;  // reason of a requested checkpoint not yet begun
  struct CheckpointInProgress {
    uint64_t id = 0;
    std::string reason;
    bool ordered = false;  // CHECKPOINT orders sent to the servers (round_)
    absl::Time deadline;
  };
  struct OrderRound {
    proto::Command command = proto::COMMAND_UNKNOWN;
    uint64_t request_id = 0;
    std::map<int, proto::Header> answers;  // by server rank
    std::string error;                     // the first failure, naming the server
    absl::Time deadline;
  };
  std::optional<OrderRound> round_;
  uint64_t next_order_id_ = 1;
  enum class DayClose { kNotYet, kShrink, kExport, kCheckpoint, kDone };
  DayClose day_close_ = DayClose::kNotYet;
  absl::Time day_close_started_;
  std::vector<proto::Header> day_close_answers_;  // SHRINK and EXPORT_DELTA answers
  absl::Status run_outcome_;                      // what Run() returns after the shutdown
  std::optional<CheckpointInProgress> checkpoint_;
  std::vector<HeldRequest> checkpoint_waiters_;  // CHECKPOINT_NOW requests
  std::string shutdown_after_checkpoint_;        // reason, if shutdown waits for it
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_SCHEDULER_H_
