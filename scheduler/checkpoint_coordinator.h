// CheckpointCoordinator: consistent checkpoints of the whole cluster, and the roll-back to the
// newest one (DESIGN.md "Durability and recovery"; the folders are scheduler/checkpoint_store.h).
//
// A checkpoint is requested every checkpoint_every_chunks finished chunks, every
// checkpoint_every, whenever a queue drains (an epoch or a day ends), by the day close, and on
// CHECKPOINT_NOW (granary_ctl checkpoint). Taking it pauses every work queue, waits until no
// chunk is out (a chunk is reported finished only after its pushes were acknowledged, so the
// servers then hold exactly the finished chunks), orders every server to write
// <checkpoint>/server-<rank> (ServerOrders; after a day-close order that is out), and writes the
// manifest (finished chunks of every queue) last. One checkpoint is taken at a time; requests
// while one is wanted or under way are served by it.
//
// On start (RestoreNewest) the run rolls back to the newest manifest: servers restore their
// checkpoint, and a queue opened again gets its finished chunks back (RestoreQueueProgress);
// without a manifest the servers start from base_dir, or empty.
//
// Without checkpoint_dir the coordinator does nothing and CHECKPOINT_NOW is refused.
//
// Once a checkpoint is written, the older ones are pruned (keep_checkpoints) on the scheduler's
// file thread (FileWorker), not on the event loop: heartbeats go on while a large checkpoint is
// deleted. One prune is queued at a time; a checkpoint written meanwhile prunes again after it.
// The manifest is written on a thread of its own (`manifests`, a second FileWorker): its fsyncs
// took over a second on a loaded disk, longer than a heartbeat timeout of a second, and it must
// not wait behind a slow prune either. The checkpoint ends (waiters answered, queues unpaused)
// when that write ended, or failed after checkpoint_timeout.
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_CHECKPOINT_COORDINATOR_H_
#define GRANARY_SCHEDULER_CHECKPOINT_COORDINATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/proto/message.pb.h"
#include "scheduler/checkpoint_store.h"
#include "scheduler/file_worker.h"
#include "scheduler/membership.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_socket.h"
#include "scheduler/server_orders.h"
#include "scheduler/work_queue.h"
#include "scheduler/work_queue_service.h"

namespace granary {

class CheckpointCoordinator {
 public:
  // A checkpoint that ended: OK with the manifest written, or why it failed (the folder then
  // does not count as a checkpoint; the run goes on and the next checkpoint tries again).
  struct Outcome {
    absl::Status status;
    std::string dir;
    uint64_t id = 0;  // the manifest's id
  };

  // Every argument must outlive this object. `queues` is set later (SetQueues): the queues need
  // RestoreQueueProgress when they open.
  CheckpointCoordinator(const SchedulerOptions& options, SchedulerSocket& socket,
                        Membership& membership, ServerOrders& orders, FileWorker& files,
                        FileWorker& manifests);
  CheckpointCoordinator(const CheckpointCoordinator&) = delete;
  CheckpointCoordinator& operator=(const CheckpointCoordinator&) = delete;

  // REQUIRES: called once, before anything else but RestoreNewest.
  void SetQueues(WorkQueueService* queues) { queues_ = queues; }

  // Finds the newest checkpoint and sets how servers start in the membership's view
  // (restore_from or start_empty). OK without checkpoint_dir. FailedPrecondition if the newest
  // checkpoint was taken with another number of servers or shard map; NotFound if base_dir is
  // not a closed day's checkpoint; the store's error if the folder cannot be read.
  absl::Status RestoreNewest();
  // Marks the chunks the restored manifest records for `queue` finished. FailedPrecondition
  // if the manifest has the queue with other chunks.
  absl::Status RestoreQueueProgress(WorkQueue& queue) const;

  // Whether this run keeps checkpoints (checkpoint_dir).
  bool enabled() const { return store_ != nullptr; }
  // Asks for a checkpoint for `reason`; nothing if one is wanted already or checkpoints are
  // off. A checkpoint already under way does not serve it: another follows.
  void Request(const std::string& reason);
  // Counts a finished chunk towards checkpoint_every_chunks.
  void CountFinishedChunk() { ++chunks_since_checkpoint_; }
  // CHECKPOINT_NOW: answered with ACK and the checkpoint's folder once a checkpoint is written
  // (one under way serves it: no chunk finishes after it began), or with the error.
  void HandleCheckpointNow(const std::string& routing_id, const proto::Header& header);
  // How many CHECKPOINT_NOW requests of `routing_id` wait, and of everyone.
  int WaitersOf(const std::string& routing_id) const;
  size_t waiters() const { return waiters_.size(); }

  // Whether a checkpoint is wanted or under way.
  bool pending() const { return in_progress_.has_value() || !wanted_.empty(); }
  // Whether a checkpoint is under way.
  bool in_progress() const { return in_progress_.has_value(); }

  // Moves the checkpoints on: starts a due or wanted one, orders the servers once no chunk is
  // out, writes the manifest (on the manifest thread) once every server answered. Returns the
  // outcome when a checkpoint ended in this call (waiters answered, queues unpaused). Call after
  // every round of messages while the cluster is formed and not shutting down.
  std::optional<Outcome> Advance();

 private:
  struct HeldRequest {
    std::string routing_id;
    proto::Header header;
  };
  struct InProgress {
    uint64_t id = 0;
    std::string reason;
    bool ordered = false;  // CHECKPOINT orders sent to the servers (ServerOrders round)
    absl::Time deadline;
    // Set once every server wrote its part: the manifest being written on the manifest thread.
    std::optional<proto::CheckpointManifest> manifest;
    // The outcome of that write, once it ended.
    std::optional<absl::Status> written;
  };
  // Queues the write of in_progress_'s manifest on the manifest thread.
  void WriteManifestInBackground();
  Outcome Finish(const absl::Status& status);
  // Queues a prune on the file thread, or marks one to follow the prune already queued.
  void PruneInBackground();

  const SchedulerOptions& options_;
  SchedulerSocket& socket_;
  Membership& membership_;
  ServerOrders& orders_;
  FileWorker& files_;
  FileWorker& manifests_;
  WorkQueueService* queues_ = nullptr;

  std::unique_ptr<CheckpointStore> store_;  // null without checkpoint_dir
  // The newest manifest (restored or written by this run): queues opened again take their
  // progress from it, and queues not opened again keep theirs in the next manifest.
  std::optional<proto::CheckpointManifest> restored_;
  uint64_t next_checkpoint_id_ = 1;
  int chunks_since_checkpoint_ = 0;
  absl::Time last_checkpoint_;
  std::string wanted_;  // reason of a requested checkpoint not yet begun
  std::optional<InProgress> in_progress_;
  std::vector<HeldRequest> waiters_;  // CHECKPOINT_NOW requests
  bool prune_queued_ = false;         // a prune is queued or under way on the file thread
  bool prune_again_ = false;          // a checkpoint was written since it was queued
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_CHECKPOINT_COORDINATOR_H_
