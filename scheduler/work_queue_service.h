// WorkQueueService: the scheduler's work queues (scheduler/work_queue.h) served to workers.
//
// Workers define a queue (OPEN_QUEUE: every worker the same definition; only the first counts,
// and a round-robin queue must deal to the cluster's number of workers), ask for chunks
// (NEXT_CHUNK: answered at once with a chunk or "drained", or held until a chunk comes free,
// e.g. one requeued from a worker that died or once the queues are unpaused) and report them
// finished (CHUNK_DONE with the chunk's final progress, answered with ACK). As they train a
// chunk they report its progress (CHUNK_PROGRESS, fire and forget: a report the queue refuses
// is logged naming the worker, never answered), so that a dead worker's chunk resumes at its
// first unacknowledged batch (scheduler/work_queue.h "Progress"). Each finished chunk is logged
// with the samples trained from it, and "drained" answers carry the queue's totals. A queue
// opened again after a roll-back gets the chunks the checkpoint recorded finished back
// (`restore_progress`); its progress records start anew.
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_WORK_QUEUE_SERVICE_H_
#define GRANARY_SCHEDULER_WORK_QUEUE_SERVICE_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/proto/message.pb.h"
#include "scheduler/membership.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_socket.h"
#include "scheduler/work_queue.h"

namespace granary {

class WorkQueueService {
 public:
  // Marks the chunks a restored checkpoint records for a newly opened queue finished; an
  // error refuses the OPEN_QUEUE with it.
  using RestoreProgress = std::function<absl::Status(WorkQueue& queue)>;
  // Called after a chunk of `queue` was reported finished (and acknowledged).
  using ChunkFinished = std::function<void(const WorkQueue& queue)>;

  // `options`, `socket` and `membership` must outlive this object.
  WorkQueueService(const SchedulerOptions& options, SchedulerSocket& socket,
                   const Membership& membership, RestoreProgress restore_progress,
                   ChunkFinished chunk_finished);
  WorkQueueService(const WorkQueueService&) = delete;
  WorkQueueService& operator=(const WorkQueueService&) = delete;

  // OPEN_QUEUE, NEXT_CHUNK, CHUNK_DONE or CHUNK_PROGRESS from worker `member`. Errors go back to
  // the worker as ERROR_REPLY.
  void HandleRequest(const ClusterMember& member, const proto::Header& header);

  // Gives the chunks of dead worker `rank` (`name` in logs) to whichever worker asks next.
  void RequeueChunksOf(int rank, const std::string& name);

  // While paused (a checkpoint is being taken) no chunk is handed out, in every queue and in
  // queues opened meanwhile; unpausing answers the requests held meanwhile.
  void SetPaused(bool paused);
  // Whether no chunk of any queue is out with a worker.
  bool NoneInFlight() const;
  // Whether worker `routing_id` waits in a held NEXT_CHUNK of queue `name`.
  bool IsWaitingForChunk(const std::string& name, const std::string& routing_id) const;
  // How many NEXT_CHUNK requests of `routing_id` are held, in every queue.
  int HeldOf(const std::string& routing_id) const;

  const std::map<std::string, WorkQueue>& queues() const { return queues_; }

  // The memory a queue of `spec` takes, as counted against max_work_queue_bytes: its
  // definition and every chunk's bookkeeping.
  static size_t QueueBytes(const proto::WorkQueueSpec& spec);

 private:
  struct HeldRequest {
    std::string routing_id;
    proto::Header header;
  };
  void OpenQueue(const ClusterMember& member, const proto::Header& header);
  // Records `progress` from `member` in `queue`; logs and ignores a refused report.
  void RecordProgress(WorkQueue& queue, const ClusterMember& member,
                      const proto::ChunkProgress& progress);
  // Answers the held NEXT_CHUNK requests of `queue` that can be answered now.
  void AnswerHeldRequests(WorkQueue& queue);
  // Answers a NEXT_CHUNK request with a chunk or "drained"; false if neither is possible yet.
  bool TryAnswerNextChunk(WorkQueue& queue, const std::string& routing_id,
                          const proto::Header& request);

  const SchedulerOptions& options_;
  SchedulerSocket& socket_;
  const Membership& membership_;
  const RestoreProgress restore_progress_;
  const ChunkFinished chunk_finished_;
  bool paused_ = false;
  size_t queue_bytes_ = 0;                   // QueueBytes of every queue opened
  std::map<std::string, WorkQueue> queues_;  // by name
  std::map<std::string, std::vector<HeldRequest>> held_requests_;  // NEXT_CHUNK, by queue
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_WORK_QUEUE_SERVICE_H_
