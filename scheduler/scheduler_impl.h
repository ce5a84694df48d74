// SchedulerImpl: the state and event loop behind Scheduler (scheduler/scheduler.h), as
// LevelDB's DBImpl is behind DB. Only scheduler.cc includes this header.
//
// One thread, one socket: Run() polls the ROUTER socket (SchedulerSocket), hands each message
// to the component that serves its command (HandleMessage), then lets the components move on
// in a fixed order: heartbeats (Membership; a death goes to Barriers and requeues the dead
// worker's chunks in WorkQueueService; a dead member's later messages are refused, since it is
// fenced), StepClocks::Publish, CheckpointCoordinator::Advance,
// DayClose::Advance. A component holds references to the components it uses, declared before
// it below, except that the checkpoints reach the work queues through a pointer set in the
// constructor and the work queues reach the checkpoints only through the two hooks wired there.
// What ends the run (the shutdown and its outcome) stays here.
//
// The loop never waits on slow file work: pruning old checkpoints and publishing a closed day
// run on one FileWorker's thread, writing checkpoint manifests on another's; each round runs
// the callbacks of the work that ended (FileWorker::RunFinished) before the checkpoints and the
// day close move on. Run() returns
// only after that work ended, or after shutdown_timeout more.
//
// Thread-compatible, except RequestStop() and port(), which are thread-safe.
#ifndef GRANARY_SCHEDULER_SCHEDULER_IMPL_H_
#define GRANARY_SCHEDULER_SCHEDULER_IMPL_H_

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/message.h"
#include "scheduler/barriers.h"
#include "scheduler/checkpoint_coordinator.h"
#include "scheduler/day_close.h"
#include "scheduler/file_worker.h"
#include "scheduler/membership.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_socket.h"
#include "scheduler/server_orders.h"
#include "scheduler/step_clocks.h"
#include "scheduler/work_queue_service.h"
#include "zmq.hpp"

namespace granary {

class SchedulerImpl {
 public:
  SchedulerImpl(zmq::context_t* context, SchedulerOptions options);
  SchedulerImpl(const SchedulerImpl&) = delete;
  SchedulerImpl& operator=(const SchedulerImpl&) = delete;

  // As Scheduler::Run, RequestStop and port.
  absl::Status Run();
  void RequestStop() { stop_requested_ = true; }
  int port() const { return port_.load(); }

 private:
  // Checks the options (numbers of nodes, day, close_day_into) and stamps the day on the
  // view. InvalidArgument naming the option.
  absl::Status CheckOptions();
  absl::Status WriteAddressFile() const;
  // OK for `header` from `routing_id` if its names (barrier, queue, clock) are at most
  // kMaxNameBytes long and, for a request the scheduler may hold (BARRIER, NEXT_CHUNK,
  // CHECKPOINT_NOW, SHUTDOWN), the peer holds fewer than max_requests_per_peer and, for a
  // control request, all peers fewer than kMaxHeldControlRequests. Else ResourceExhausted
  // naming the limit.
  absl::Status AdmitRequest(const std::string& routing_id, const proto::Header& header) const;
  // Dispatches one message by its command: a new command gets its case here, served by the
  // component whose idea it is.
  void HandleMessage(const std::string& routing_id, Message&& message);
  void HandleJobDone(ClusterMember& member, const proto::Header& header);
  // Replacement worker `joiner` joined (Membership): completes its `view` with the barriers
  // released so far, and leaves it out of the step clocks under way.
  void HandleJoin(const ClusterMember& joiner, proto::ClusterView* view);
  // A dead worker costs no roll-back: its chunks go back to the queues, barriers and step
  // clocks go on without it, and the run ends once the live workers are done; it fails only if
  // no worker is left alive. A dead server fails the
  // barriers of its groups (and through the workers' failed requests, the run).
  void HandleDeath(const ClusterMember& dead);
  // Answers a message of `fenced` (a member declared dead) with SHUTDOWN carrying why it was
  // fenced and header.node = its NodeInfo, and otherwise ignores the message.
  void RefuseFenced(const ClusterMember& fenced, const proto::Header& header);
  // Once every live worker is done: closes the day, or shuts down (after a pending checkpoint).
  void EndJobIfAllWorkersDone();
  // Moves the checkpoints and the day close on, and starts the shutdown they lead to.
  void AdvanceCheckpointAndDay();
  // Ends the run once the day close ended with `closed`.
  void FinishDay(const absl::Status& closed);
  // Orders every live member and every node still registering to shut down (once).
  void StartShutdown(const std::string& reason);
  // Sends SHUTDOWN with `reason` to `routing_id`.
  void OrderShutdown(const std::string& routing_id, const std::string& reason);
  // Whether the shutdown is complete: every live member acknowledged, or shutdown_timeout
  // passed. Then answers the control clients that asked for it.
  bool ShutdownComplete();

  // Barrier, work queue and step clock names longer than this are refused: what a peer makes
  // the scheduler keep stays small.
  static constexpr size_t kMaxNameBytes = 256;
  // CHECKPOINT_NOW and SHUTDOWN requests held for all peers at most: every connection of a
  // control client is a peer of its own.
  static constexpr size_t kMaxHeldControlRequests = 1024;
  // A refusal of AdmitRequest is logged once per this many, so that a flood does not fill the
  // log.
  static constexpr int kRefusalsPerLogLine = 100;

  const SchedulerOptions options_;
  std::atomic<int> port_{0};
  std::atomic<bool> stop_requested_{false};

  // Components; each uses only those above it (but see CheckpointCoordinator::SetQueues).
  FileWorker files_;
  // Checkpoint manifests: small writes whose fsyncs must wait neither on the loop nor behind a
  // slow prune on files_.
  FileWorker manifests_;
  SchedulerSocket socket_;
  Membership membership_;
  Barriers barriers_;
  ServerOrders orders_;
  CheckpointCoordinator checkpoints_;
  WorkQueueService queues_;
  StepClocks clocks_;
  DayClose day_close_;

  bool shutting_down_ = false;
  absl::Time shutdown_deadline_;
  std::set<std::string> shutdown_acked_;
  std::vector<std::string> control_waiters_;  // control clients waiting for SHUTDOWN_ACK
  // The reason to shut down once the checkpoint wanted or under way ended; empty: none.
  std::string shutdown_after_checkpoint_;
  absl::Status run_outcome_;  // what Run() returns after the shutdown
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_SCHEDULER_IMPL_H_
