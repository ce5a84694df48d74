// WorkQueue: one named list of input chunks, handed out to workers as they ask for them.
//
// A chunk is pending, handed to one worker, or finished; a finished chunk is never handed out
// again. How pending chunks are handed out is the spec's assignment:
//   DYNAMIC      an idle worker takes the next pending chunk, so a slow worker holds back only
//                the chunks it has, never the whole epoch.
//   ROUND_ROBIN  chunk i is dealt to worker i % num_workers, and a worker takes its own chunks
//                in id order; a worker none of whose chunks is pending gets nothing, even
//                while other workers' chunks are. The chunks a worker trains, and their order,
//                thus depend only on the spec and on the chunks already finished (restored
//                from a checkpoint), never on timing: with bulk-synchronous steps two runs
//                train alike (DESIGN.md "Durability and recovery").
// Chunks of a worker that died go back to the front of the queue (Requeue) and are handed to
// the next worker that asks (ROUND_ROBIN: every chunk dealt to the dead worker is free for
// any worker from then on). While paused (for a consistent checkpoint) nothing is handed out,
// but handed-out chunks may still finish.
//
// Progress: a worker reports, as it trains a chunk, the chunk's resume point (RecordProgress:
// the data lines before the first batch whose pushes are not all acknowledged), the samples
// trained before it and the batches taken past it. A requeued chunk is handed out next with
// Chunk.skip_lines = the recorded resume point, so losing a worker rolls nothing back: the
// lines before the resume point are trained once, and only the batches the dead worker had
// taken past it (its last report's batches_in_flight; workers bound them: at most 3 per
// compute thread, and max_staleness + 1 with bounded staleness, MaxBatchesPastResume in
// worker/train/trainer.h) may be applied twice or partially; they are counted in
// partial_batches. The promise rests on what the queue recorded: a batch acknowledged on the
// worker but not yet reported when it died is trained again (workers report after every batch,
// so at most one round trip's batches), and is not counted.
//
//   WorkQueue queue(spec);
//   std::optional<proto::Chunk> chunk = queue.Take(/*worker=*/0);   // nullopt: none pending
//   ...train it...
//   absl::Status status = queue.Finish(0, chunk->id);
//
// Thread-compatible: the scheduler's single thread owns its queues.
#ifndef GRANARY_SCHEDULER_WORK_QUEUE_H_
#define GRANARY_SCHEDULER_WORK_QUEUE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/message.pb.h"

namespace granary {

// Whether `a` and `b` define the same chunks under the same name, however they deal them.
bool SameChunks(const proto::WorkQueueSpec& a, const proto::WorkQueueSpec& b);

class WorkQueue {
 public:
  // InvalidArgument, naming the queue, unless the chunk ids are 0..n-1 in order, every chunk
  // names a file and a valid byte range, and a ROUND_ROBIN spec has num_workers >= 1.
  static absl::StatusOr<WorkQueue> Create(proto::WorkQueueSpec spec);

  const proto::WorkQueueSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name(); }

  // The next pending chunk `worker` may take (see the assignments above), now handed to it;
  // nullopt if there is none or the queue is paused.
  std::optional<proto::Chunk> Take(int worker);

  // Records chunk `chunk_id` finished by `worker`. FailedPrecondition, naming the queue, the
  // chunk and the worker, unless the chunk is currently handed to that worker (a chunk taken
  // back from a worker presumed dead, or finished twice, must not count twice).
  absl::Status Finish(int worker, uint64_t chunk_id);

  // Records `progress` of a chunk handed to `worker` (see "Progress"). InvalidArgument, naming
  // the queue, the chunk and the worker (the report is then ignored), unless the chunk is
  // handed to that worker, lines_done does not go back, is not before the chunk's skip_lines
  // and not beyond the lines its byte range can hold, and samples_trained does not go back nor
  // exceed the lines this worker read.
  absl::Status RecordProgress(int worker, const proto::ChunkProgress& progress);

  // `worker` is dead: puts every chunk handed to it back at the front of the queue, to resume
  // at its recorded progress, and returns how many; ROUND_ROBIN: the chunks dealt to it may be
  // taken by any worker from now on.
  int Requeue(int worker);

  // Marks chunks finished without handing them out (restoring from a checkpoint manifest).
  // InvalidArgument for an unknown id.
  absl::Status RestoreFinished(const std::vector<uint64_t>& chunk_ids);

  void set_paused(bool paused) { paused_ = paused; }
  bool paused() const { return paused_; }

  size_t size() const { return owner_.size(); }
  size_t num_pending() const { return pending_.size(); }
  size_t num_in_flight() const { return in_flight_; }
  size_t num_finished() const { return finished_; }
  // Every chunk is finished.
  bool drained() const { return finished_ == owner_.size(); }
  // Ids of the finished chunks, ascending.
  std::vector<uint64_t> FinishedIds() const;

  // What the queue recorded of one chunk (see "Progress").
  struct ChunkRecord {
    uint64_t lines_done = 0;         // the resume point
    uint64_t samples_trained = 0;    // before lines_done, by every attempt
    uint64_t attempt_samples = 0;    // of those, by the worker it is handed to now
    uint32_t batches_in_flight = 0;  // the current worker's last report
    uint64_t partial_batches = 0;    // in flight on the workers that died with it
    int resumed_from = -1;           // the last worker that died with it, or -1
    uint64_t resumed_at = 0;         // where the chunk resumed after resumed_from died
    int finished_by = -1;
  };
  const ChunkRecord& record(uint64_t chunk_id) const { return records_[chunk_id]; }
  // Samples over the finished chunks (a chunk restored finished from a checkpoint counts none:
  // the manifest does not record them); requeued chunks and partial batches over every chunk.
  proto::QueueTotals Totals() const;

 private:
  static constexpr int kPending = -1;
  static constexpr int kFinished = -2;

  explicit WorkQueue(proto::WorkQueueSpec spec);
  // Whether `worker` may take pending chunk `id`.
  bool MayTake(int worker, uint64_t id) const;

  proto::WorkQueueSpec spec_;
  bool round_robin_ = false;
  std::vector<bool> released_;  // ROUND_ROBIN, by worker: dead, its chunks free for any worker
  std::vector<int> owner_;      // per chunk: the worker it is handed to, or kPending/kFinished
  std::vector<ChunkRecord> records_;  // per chunk
  uint64_t requeued_chunks_ = 0;
  std::deque<uint64_t> pending_;  // ids, in hand-out order
  size_t in_flight_ = 0;
  size_t finished_ = 0;
  bool paused_ = false;
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_WORK_QUEUE_H_
