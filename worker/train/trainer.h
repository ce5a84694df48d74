// Trainer: runs a training job (worker/job_config.h) on one worker of a cluster: epochs of
// data-parallel training against the parameter servers, each followed by an evaluation whose
// metrics are computed over every worker's predictions together.
//
// Each compute thread runs a BatchPipeline (worker/train/batch_pipeline.h): its own model
// replica (built by CreateModel from the job's architecture, worker/models/model_factory.h)
// over the batches it takes, pulling the next batch's rows while it computes the current one
// and pushing the gradients; the servers apply the optimizers.
//
// Consistency (DESIGN.md "Consistency"): asynchronous by default, a batch may read rows that
// miss the pushes of the last batch or two. With a max_staleness s (the job's
// TrainingConfig.max_staleness, or TrainerOptions.max_staleness) training is bounded-stale
// (s = 0: bulk-synchronous) on the step clock of each epoch's work queue (worker/step_clock.h):
// a batch is a step, the pulls of step t are issued only once every worker still training
// finished t - 1 - s steps, and a step counts as finished once its pushes are acknowledged. A
// worker done with the epoch's queue, or dead, stops counting; each epoch's clock starts at 0.
//
// Data split: training input goes through the scheduler's work queue (worker/batch_source.h,
// QueueBatchSource): each epoch is a queue "train-epoch-<E>" of chunks of the train files; an
// idle worker takes the next chunk, so a slow worker holds back only its own chunks, and a
// chunk is reported finished once every batch of it is trained and its pushes acknowledged
// (the promise consistent checkpoints rest on). Bulk-synchronous (s = 0) the queue deals chunk
// i to worker i % num_workers instead (scheduler/work_queue.h ROUND_ROBIN) and the workers
// push each step in rank order once all pulled it (StepClock::WaitToPush): nothing of the
// training then depends on timing, so a run restarted from a checkpoint taken at an epoch's
// end trains as the run without the failure. After a roll-back to a checkpoint, the chunks
// it recorded finished are not trained again. Evaluation reads every eval file on every worker
// and keeps the batches whose index i satisfies i % num_workers == rank (StripedBatchSource).
// A barrier of all workers ends each epoch.
//
// Dense parameters: every worker initializes the model with the job's seed, so all start from
// bit-identical values w0. The dense table stores the offset w - w0 as blocks of its dim
// floats (keys DenseBlockKey(table, block)); its rows must start at zero (a ZEROS initializer
// in the cluster config), and the worker uses w0 + pulled offset. The gradient w.r.t. the
// offset is the gradient w.r.t. w, and SGD, Adagrad and Adam are invariant to that shift, so
// this trains exactly as if the servers held w, without servers having to know the model's
// initializers.
//
// Evaluation (after each epoch, if the job has eval files; worker/train/evaluation.h): pulls
// with PullMode::kEvaluate (the model is not changed); each worker writes its predictions to
// <metrics dir>/eval-epoch<E>-worker<R>.tsv; after a barrier the lowest-ranked live worker
// (worker 0 unless it died) reads the files of the workers alive when the barrier released,
// computes exact metrics (BINARY: AUC and log loss; MULTICLASS: accuracy and log loss;
// REGRESSION: RMSE), logs them and appends one JSON line to the job's metrics file, whose
// "eval_workers" lists the workers merged: after a worker died, the eval covers only the
// others' shares of the eval data. Its training figures are the merging worker's
// ("worker<R>_train_samples", ...).
//
// Progressive validation (TrainerOptions::evaluate_before_training): before the first epoch the
// model the run starts from (a restored base or checkpoint, or the initial values) is evaluated
// on the eval files exactly like an epoch's evaluation, as epoch 0, so that a daily run scores
// yesterday's model on today's data before it has seen any of it; its JSON line is marked
// "before_training": true.
//
// A replacement worker (joined_running_job in its view: it took the rank of a dead worker after
// the cluster formed, scheduler/membership.h) joins the job where it is. Its view lists the
// barriers the others already passed (released_barriers); it skips every step whose barrier is
// among them: the epochs whose last barrier ("eval-epoch-E" with eval files, else
// "train-epoch-E") was released, the evaluation before training and the retrieval evaluation.
// It takes part in everything else like any worker, from the first epoch not over: it trains
// the chunks of that epoch still pending (among them its predecessor's, requeued at its death),
// passes its barriers (one already released releases it at once) and evaluates it, so the
// merge finds its predictions. Since every barrier not yet released when it joined waits for
// it, no worker waits for a step it skips. It does not count for the step clocks already under
// way when it joined (it starts them at 0 while the others are further on;
// scheduler/step_clocks.h), only for later ones.
//
// Retrieval evaluation (models of the two-tower family, worker/models/retrieval_model.h, after the
// last epoch, if the job has eval files): worker 0 runs the model over every batch of the train
// and eval files (not only its share), ranks each positive eval sample's item against the whole
// item corpus (worker/train/retrieval_evaluator.h), logs HitRate@K and MRR overall and on items
// first seen in the eval files, the warm and cold AUC and the new items' popularity
// correlation, appends them as one JSON line {"epoch": E, "retrieval": {...}} to the metrics
// file, and exports user_vectors.vec and item_vectors.vec (common/vector_file.h) beside it; the
// other workers wait at a barrier.
//
// Compute threads (TrainerOptions::threads): each thread has its own model replica (built
// from the same config and seed, so all share w0) and its own pipeline of two batches: it
// takes the next batch of this worker's share from the epoch's one BatchSource, pulls,
// computes and pushes exactly as a single thread does, so threads overlap each other's network
// waits and compute. The replicas do not share dense values: each pulls the dense table per
// batch, like another worker would. Evaluation runs on one thread, so its prediction files keep
// the input order.
//
// Thread-compatible: Run uses the calling thread plus threads - 1 of its own while training
// (each Reader adds its parsing thread; the KVWorker has none). Every compute thread needs a
// few MiB of stack for Eigen (see CMakeLists.txt); the default of std::thread and of the main
// thread suffices.
#ifndef GRANARY_WORKER_TRAIN_TRAINER_H_
#define GRANARY_WORKER_TRAIN_TRAINER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/proto/message.pb.h"
#include "common/scheduler_client.h"
#include "worker/job_config.h"
#include "worker/kv_worker.h"
#include "worker/train/evaluation.h"
#include "worker/train/retrieval_evaluator.h"

namespace granary {

struct TrainerOptions {
  // Relative train/eval file patterns are resolved against this folder.
  std::string data_dir = ".";
  // The job's metrics file (and the eval prediction files beside it) is relative to this.
  std::string output_dir = ".";
  // Finished batches the reader may parse ahead.
  int prefetch_batches = 4;
  // Compute threads training at once on this worker, each with its own model replica (>= 1).
  int threads = 1;
  // Evaluate before training (epoch 0, see above); requires eval files.
  bool evaluate_before_training = false;
  // If set (>= 0), overrides the job's TrainingConfig.max_staleness (absent there: async).
  std::optional<int> max_staleness;
};

// OK, or InvalidArgument if `options` can never run: threads < 1 or max_staleness < 0.
absl::Status CheckTrainerOptions(const TrainerOptions& options);

// The bound on the batches of a chunk a worker's `threads` compute threads take past its resume
// point (QueueBatchSource::Open), i.e. on what the worker's death may apply partially: per
// thread, the batches a pipeline holds at once (kPipelineBatchesTaken), and with bounded
// staleness (max_staleness >= 0) no more than max_staleness + 1. Bulk-synchronous training thus
// loses at most one batch per thread; it gives up nothing for it, since its pulls wait for the
// thread's own pushes anyway (worker/train/batch_pipeline.h).
int MaxBatchesPastResume(int threads, int max_staleness);

// Where a worker joins the job (see "A replacement worker" above): a worker of the cluster's
// formation does every step; a replacement skips those whose barrier its view lists released.
struct JoinPoint {
  bool evaluate_before_training = true;  // if the job asks for it
  int first_epoch = 1;                   // epochs + 1: none left
  bool retrieval_evaluation = true;      // after the last epoch, if the model is a retrieval one
};
// The join point of the worker with `view`, for a job of `epochs` epochs with or without eval
// files.
JoinPoint FindJoinPoint(const proto::ClusterView& view, int epochs, bool has_eval_files);

struct EpochReport {
  int epoch = 0;  // from 1; 0 for the evaluation before training
  // This worker's training share.
  int64_t train_samples = 0;
  double train_seconds = 0;
  double samples_per_second = 0;
  // Where the epoch's time went on this worker, summed over its compute threads (so with n
  // threads the three add up to n * train_seconds): blocked on pulls (the next batch's rows
  // were not back yet; with max_staleness also waiting for slower workers), blocked on the
  // previous batch's pushes (bulk-synchronous: also on this worker's push turn), and the rest
  // (taking batches from the source, which may wait for the scheduler's next chunk, preparing
  // them, forward and backward). See PipelineCounters (worker/train/batch_pipeline.h).
  double pull_wait_seconds = 0;
  double push_wait_seconds = 0;
  double compute_seconds = 0;
  int threads = 1;
  int64_t chunks = 0;  // work-queue chunks this worker finished
  // Input lines this worker skipped as bad over the epoch (worker/reader.h: e.g. a value beyond
  // max_abs_numeric, a label outside its task's domain, a line over max_line_bytes).
  int64_t bad_lines = 0;
  // The epoch's work queue totals from the scheduler's records (scheduler/work_queue.h
  // "Progress"): samples trained over all workers, chunks taken back from dead workers and
  // the batches they had in flight (possibly applied partially or twice).
  proto::QueueTotals queue_totals;
  // Payload bytes of this worker's training pulls and pushes over the epoch: sent (keys of
  // pulls and pushes, pushed gradients) and received (pulled rows and dense blocks).
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  // This worker's mean training loss per task over the epoch, in task order (empty for epoch 0).
  std::vector<double> train_loss;
  // Worker 0 only: the evaluation over all workers' predictions, in task order.
  std::vector<TaskMetrics> eval;
  // Worker 0, last epoch, retrieval models only: the retrieval evaluation.
  std::optional<RetrievalEvaluation> retrieval;
};

class Trainer {
 public:
  // `kv` and `scheduler` must outlive the trainer; `scheduler` has registered and `kv` has
  // started.
  Trainer(JobSpec spec, KVWorker* kv, SchedulerClient* scheduler, TrainerOptions options);
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs the evaluation before training if asked, then every epoch and its evaluation,
  // appending one report per evaluation or epoch to *reports.
  // InvalidArgument if CheckTrainerOptions fails, or if evaluate_before_training is set
  // without eval files; FailedPrecondition if the cluster lacks the job's tables or their dims
  // do not fit; NotFound if a file pattern matches nothing; otherwise the first error of
  // building the model, reading, a pull, a push, a barrier or writing the metrics, naming what
  // failed.
  absl::Status Run(std::vector<EpochReport>* reports);

 private:
  const JobSpec spec_;
  KVWorker* const kv_;
  SchedulerClient* const scheduler_;
  const TrainerOptions options_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_TRAINER_H_
