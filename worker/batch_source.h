// BatchSource: where a worker's compute threads take their batches from.
//
//   StripedBatchSource  one Reader over every file; batch i belongs to worker
//                       i % num_workers (evaluation: every worker reads all, keeps its share).
//   QueueBatchSource    the scheduler's work queue (scheduler/work_queue.h): chunks of the
//                       input are taken one at a time, read, and reported finished once every
//                       batch of the chunk is trained and its pushes acknowledged (Done), so
//                       a checkpoint never records a chunk whose updates are still in flight.
//                       As batches are taken and Done it reports each chunk's progress to
//                       the scheduler (SchedulerClient::ReportChunkProgress): the resume point
//                       is the end of the last batch before the first one not Done (batches
//                       of one chunk go to several threads, so Done comes out of order),
//                       counted in the chunk's data lines so that gzip chunks resume too. A
//                       chunk handed out with Chunk.skip_lines (resuming after its worker
//                       died) is read from there. Only what the scheduler recorded counts: a
//                       batch Done here but not yet reported when this worker dies is trained
//                       again by the worker that resumes the chunk (reports go out after every
//                       batch, so at most a round trip's batches). The batches taken past a
//                       chunk's resume point (trained again if this worker dies) are bounded
//                       by max_batches_past_resume: a compute thread slow on one batch holds
//                       back the others' batches of the chunk instead of letting them run on.
//
// Thread-safe: compute threads call Next and Done concurrently.
#ifndef GRANARY_WORKER_BATCH_SOURCE_H_
#define GRANARY_WORKER_BATCH_SOURCE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/message.pb.h"
#include "common/scheduler_client.h"
#include "worker/reader.h"

namespace granary {

class BatchSource {
 public:
  enum class Take {
    kBatch,  // *batch and *ticket are filled
    kEnd,    // the end of the input, an error (status() says which) or Stop
    // The next batch needs the scheduler (a new chunk), which may wait for the chunks this
    // thread holds, or waits for other threads' batches to be Done (QueueBatchSource's bound
    // on batches past a chunk's resume point): the caller must first get Done for every batch
    // it took, then call Next again with may_wait. Only returned when !may_wait.
    kMustWait,
  };
  virtual ~BatchSource() = default;
  // Takes the next batch into *batch, and into *ticket what Done must be given once the batch
  // is trained.
  virtual Take Next(Batch* batch, int64_t* ticket, bool may_wait) = 0;
  // The batch of `ticket` is trained and its pushes are acknowledged.
  virtual void Done(int64_t ticket) = 0;
  // OK, or the first error of reading or of the work queue.
  virtual absl::Status status() const = 0;
  // Ends the input for every thread (one thread's error ends it for all).
  virtual void Stop() = 0;
};

class StripedBatchSource : public BatchSource {
 public:
  StripedBatchSource(std::unique_ptr<Reader> reader, int rank, int num_workers);
  Take Next(Batch* batch, int64_t* ticket, bool may_wait) override;
  void Done(int64_t) override {}
  absl::Status status() const override { return reader_->status(); }
  void Stop() override;

 private:
  const std::unique_ptr<Reader> reader_;
  const int rank_;
  const int num_workers_;
  absl::Mutex mutex_;
  int64_t index_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
};

// The work queue of `files`: gzip files (and files of at most chunk_bytes) are one chunk each,
// larger plain files are cut into slices of about chunk_bytes (chunk_bytes 0: whole files).
// Every worker computes the same spec from the same files. NotFound naming a missing file.
absl::StatusOr<proto::WorkQueueSpec> MakeWorkQueueSpec(const std::string& name,
                                                       const std::vector<std::string>& files,
                                                       uint64_t chunk_bytes);

class QueueBatchSource : public BatchSource {
 public:
  // Opens queue `spec` on the scheduler first (every worker does; the same spec).
  // `wait_timeout` bounds each wait for the scheduler, including waiting for a chunk while the
  // remaining ones are with other workers, and each wait for room past a chunk's resume point
  // (DeadlineExceeded). `max_batches_past_resume` (0: unbounded) bounds the batches of a chunk
  // taken past its resume point; at least the batches all compute threads hold at once.
  static absl::StatusOr<std::unique_ptr<QueueBatchSource>> Open(SchedulerClient* scheduler,
                                                                proto::WorkQueueSpec spec,
                                                                const proto::DatasetConfig& dataset,
                                                                const ReaderOptions& reader_options,
                                                                absl::Duration wait_timeout,
                                                                int max_batches_past_resume = 0);

  Take Next(Batch* batch, int64_t* ticket, bool may_wait) override;
  void Done(int64_t ticket) override;
  absl::Status status() const override;
  void Stop() override;

  int64_t chunks_finished() const;
  // Bad lines (worker/reader.h: counted and skipped) of the chunks this source read to their
  // end; a chunk abandoned on an error is not counted.
  int64_t bad_lines() const;
  // The queue's totals from the scheduler's records, once it answered "drained" (Next
  // returned kEnd at the end of the input); empty before.
  proto::QueueTotals totals() const;

 private:
  // A batch taken from a chunk, from the first one not Done on.
  struct TakenBatch {
    uint64_t lines_consumed = 0;  // Batch::lines_consumed: the chunk's lines up to its end
    int samples = 0;
    bool done = false;
  };
  struct OpenChunk {
    std::unique_ptr<Reader> reader;  // null once the chunk's input is read to its end
    int64_t batches_out = 0;         // handed out and not yet Done
    // Progress (see above): `taken` holds the batches from the first one not Done on, in
    // hand-out order; the first has ticket first_ticket.
    std::deque<TakenBatch> taken;
    int64_t first_ticket = 0;
    uint64_t lines_done = 0;       // the resume point, from the chunk's first data line
    uint64_t samples_trained = 0;  // in the batches before lines_done
    uint64_t lines_total = 0;      // once reader is null: every line of the chunk
  };
  QueueBatchSource(SchedulerClient* scheduler, std::string queue,
                   const proto::DatasetConfig& dataset, const ReaderOptions& reader_options,
                   absl::Duration wait_timeout, int max_batches_past_resume);
  // Reports chunk `id` finished to the scheduler, with its final `progress`.
  // REQUIRES: mutex_ not held.
  void Finish(uint64_t id, const proto::ChunkProgress& progress);
  // The progress of chunk `id` as `chunk` holds it.
  proto::ChunkProgress ProgressOf(uint64_t id, const OpenChunk& chunk) const;

  SchedulerClient* const scheduler_;
  const std::string queue_;
  const proto::DatasetConfig dataset_;
  const ReaderOptions reader_options_;
  const absl::Duration wait_timeout_;
  const size_t max_batches_past_resume_;  // 0: unbounded

  mutable absl::Mutex mutex_;
  std::map<uint64_t, OpenChunk> chunks_ ABSL_GUARDED_BY(mutex_);  // taken, not yet finished
  std::optional<uint64_t> reading_ ABSL_GUARDED_BY(mutex_);       // the chunk Next reads
  bool fetching_ ABSL_GUARDED_BY(mutex_) = false;  // a thread asks the scheduler for a chunk
  bool drained_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mutex_);
  int64_t chunks_finished_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t bad_lines_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t next_ticket_ ABSL_GUARDED_BY(mutex_) = 0;  // batches taken, over every chunk
};

}  // namespace granary

#endif  // GRANARY_WORKER_BATCH_SOURCE_H_
