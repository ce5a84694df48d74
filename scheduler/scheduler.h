// Scheduler: the one coordinator of a Granary cluster.
//
// It waits for the configured number of servers and workers to register, assigns ranks and
// publishes the cluster view (scheduler/membership.h), watches heartbeats and reports dead
// nodes, runs barriers (scheduler/barriers.h), serves the work queues of input chunks
// (scheduler/work_queue_service.h) and the step clocks of bounded staleness
// (scheduler/step_clocks.h), takes consistent checkpoints and rolls back to the newest one on
// start (scheduler/checkpoint_coordinator.h), closes a training day (scheduler/day_close.h),
// and shuts the whole cluster down when every worker reported its job done or a control
// client (granary_ctl) asks for it.
//
// This header is what callers use; the parts and the event loop that drives them live in
// scheduler/scheduler_impl.h. A new scheduler command gets its case in
// SchedulerImpl::HandleMessage (scheduler/scheduler_impl.cc), which hands it to the component
// whose idea it is (or a new component, owned by SchedulerImpl, for a new idea); the client
// side goes in common/scheduler_client.h.
//
//   zmq::context_t context(1);
//   Scheduler scheduler(&context, options);
//   absl::Status status = scheduler.Run();  // until the cluster shut down
//
// Thread-compatible: Run() owns the object's socket and runs on the caller's thread;
// RequestStop() and port() may be called from any thread.
#ifndef GRANARY_SCHEDULER_SCHEDULER_H_
#define GRANARY_SCHEDULER_SCHEDULER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/curve_keys.h"
#include "common/proto/config.pb.h"
#include "common/socket_options.h"
#include "zmq.hpp"

namespace granary {

struct SchedulerOptions {
  std::string host = "127.0.0.1";
  // The cluster's CURVE keys (common/curve_keys.h); nullopt: members connect unauthenticated.
  std::optional<CurveKeys> curve;
  // The bounds of the scheduler's socket (common/socket_options.h).
  SocketLimits socket_limits;
  int port = 0;  // 0 picks a free port; see address_file.
  std::string cluster_id = "granary";
  int num_servers = 1;  // >= 1
  int num_workers = 1;  // >= 1
  proto::ClusterConfig config;
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // How often liveness is checked; also bounds how late a death is noticed.
  absl::Duration check_interval = absl::Milliseconds(200);
  // The cluster must form within this long, or Run() fails naming who is missing.
  absl::Duration register_timeout = absl::Seconds(60);
  // How long shutdown waits for nodes to acknowledge before giving up on them; then how long
  // Run() waits for file work still under way (a prune, a day's publish) before it returns.
  absl::Duration shutdown_timeout = absl::Seconds(5);
  // Requests of one peer connection the scheduler holds unanswered, at most: barriers it waits
  // in, NEXT_CHUNK requests waiting for a chunk, CHECKPOINT_NOW and SHUTDOWN requests waiting
  // for their end. One more such request is answered at once with an ERROR_REPLY naming the
  // limit, so that one peer cannot fill the scheduler's memory. A worker holds one barrier and
  // a NEXT_CHUNK per reading thread; a control client one request. >= 1.
  int max_requests_per_peer = 1024;
  // The work queues workers open (OPEN_QUEUE) may take this many bytes of the scheduler's
  // memory together, their definitions and per-chunk bookkeeping counted
  // (WorkQueueService::QueueBytes); an OPEN_QUEUE beyond it is refused naming the limit. Queues
  // are kept for the whole run (one per epoch); 1 GiB holds millions of chunks.
  size_t max_work_queue_bytes = size_t{1} << 30;
  // If non-empty, "host:port" is written here (atomically) once the socket is bound.
  std::string address_file;
  // Consistent checkpoints go here (scheduler/checkpoint_store.h); empty: none.
  std::string checkpoint_dir;
  int checkpoint_every_chunks = 0;                         // 0: not by chunks
  absl::Duration checkpoint_every = absl::ZeroDuration();  // zero: not by time
  int keep_checkpoints = 2;
  // Removes a folder tree (old checkpoints, an earlier base of the day); it runs on the
  // scheduler's file thread (scheduler/file_worker.h), never on the event loop. Empty:
  // std::filesystem::remove_all. Tests put a slow one here.
  std::function<absl::Status(const std::string& path)> remove_tree;
  // Writes a checkpoint's MANIFEST atomically; it runs on the scheduler's manifest thread, never
  // on the event loop. Empty: WriteFileAtomically (common/atomic_file.h). Tests put a slow one
  // here.
  std::function<absl::Status(const std::string& path, const std::string& contents)> write_file;
  // A checkpoint fails if the chunks out are not finished within this long, or then the
  // servers did not write their parts within this long; also the bound on each day-close order.
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
  // Fault injection for tests only (scheduler/day_close.h): the scheduler kills itself
  // (SIGKILL) right after this step of the day close: "shrink", "export", "checkpoint",
  // "publish" (base moved in, no report yet) or "report"; "publish_error" makes the move of the
  // base fail. Empty (the default): no fault.
  std::string fault_in_close;
};

class SchedulerImpl;

class Scheduler {
 public:
  Scheduler(zmq::context_t* context, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Binds, then serves until the cluster has shut down. Returns OK after an orderly shutdown;
  // Unavailable if the port cannot be bound; InvalidArgument if a number of nodes or
  // max_requests_per_peer is below 1, day is not a date or close_day_into lacks day or
  // checkpoint_dir; DeadlineExceeded if the
  // cluster did not form; the error if the checkpoint to roll back to is unusable or closing the
  // day failed; Aborted if a worker reported its job failed.
  absl::Status Run();

  // Asks Run() to shut the cluster down and return. Thread-safe.
  void RequestStop();

  // The bound port; valid once address_file was written (or Run() has bound). Thread-safe.
  int port() const;

 private:
  const std::unique_ptr<SchedulerImpl> impl_;
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_SCHEDULER_H_
