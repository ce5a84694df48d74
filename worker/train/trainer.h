// Trainer: runs a training job (worker/job_config.h) on one worker of a cluster: epochs of
// data-parallel training against the parameter servers, each followed by an evaluation whose
// metrics are computed over every worker's predictions together.
//
// Per batch: the model (worker/models/model.h, built by CreateModel from the job's architecture)
// lists the batch's unique embedding keys (Model::Prepare); the
// trainer pulls their rows from the sparse table and the dense parameters from the dense
// table, runs forward and backward, and pushes the row gradients and the dense gradient; the
// servers apply the optimizers. The pulls of batch t + 1 are issued before batch t is
// computed (the reader parses further ahead on its own thread), so the network round trip
// overlaps the computation; pushes are waited one batch later.
//
// Consistency (DESIGN.md "Consistency"): asynchronous by default, a batch may read rows that
// miss the pushes of the last batch or two. With a max_staleness s (the job's
// TrainingConfig.max_staleness, or TrainerOptions.max_staleness) training is bounded-stale
// (s = 0: bulk-synchronous) on the step clock of each epoch's work queue (worker/step_clock.h):
// a batch is a step, the pulls of step t are issued only once every worker still training
// finished t - 1 - s steps, and a step counts as finished once its pushes are acknowledged. When
// that gate is closed the next batch's pulls are deferred, instead of overlapping the computation,
// until this thread's pushes are acknowledged and the others caught up. A worker done with
// the epoch's queue, or dead, stops counting; each epoch's clock starts at 0.
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
// and keeps the batches whose index i satisfies i % num_workers == rank. A barrier of all
// workers ends each epoch.
//
// Dense parameters: every worker initializes the model with the job's seed, so all start from
// bit-identical values w0. The dense table stores the offset w - w0 as blocks of its dim
// floats (keys DenseBlockKey(table, block); rows start at zero) and the worker uses
// w0 + pulled offset. The gradient w.r.t. the offset is the gradient w.r.t. w, and SGD,
// Adagrad and Adam are invariant to that shift, so this trains exactly as if the servers held
// w, without servers having to know the model's initializers.
//
// Evaluation (after each epoch): pulls with PullMode::kEvaluate (the model is not changed);
// each worker writes its predictions to <metrics dir>/eval-epoch<E>-worker<R>.tsv; after a
// barrier worker 0 reads every worker's file, computes exact metrics (BINARY: AUC and log
// loss; MULTICLASS: accuracy and log loss; REGRESSION: RMSE), logs them and appends one JSON
// line to the job's metrics file.
//
// Progressive validation (TrainerOptions::evaluate_before_training): before the first epoch the
// model the run starts from (a restored base or checkpoint, or the initial values) is evaluated
// on the eval files exactly like an epoch's evaluation, as epoch 0, so that a daily run scores
// yesterday's model on today's data before it has seen any of it; its JSON line is marked
// "before_training": true.
//
// Retrieval evaluation (models of the two-tower family, worker/models/retrieval_model.h, after the
// last epoch): worker 0 runs the model over every batch of the train and eval files (not only its
// share), ranks each positive eval sample's item against the whole item corpus
// (worker/train/retrieval_evaluator.h), logs HitRate@K and MRR overall and on items first seen in
// the eval files, appends them as one JSON line {"epoch": E, "retrieval": {...}} to the
// metrics file, and exports user_vectors.vec and item_vectors.vec (common/vector_file.h)
// beside it; the other workers wait at a barrier.
//
// Compute threads (TrainerOptions::threads): each thread has its own model replica (built
// from the same config and seed, so all share w0) and its own pipeline of two batches: it
// takes the next batch of this worker's share from the one reader, pulls, computes and pushes
// exactly as a single thread does, so threads overlap each other's network waits and compute.
// The replicas do not share dense values: each pulls the dense table per batch, like another
// worker would. Evaluation runs on one thread, so its prediction files keep the input order.
//
// Traffic: the report counts the payload bytes this worker's pulls and pushes carry (8 per
// key, 4 per float; message headers excluded), from the sizes of the arrays handed to the
// KVWorker.
//
// Thread-compatible: Run uses the calling thread plus threads - 1 of its own while training
// (the Reader and KVWorker add theirs). Every compute thread needs a few MiB of stack for
// Eigen (see CMakeLists.txt); the default of std::thread and of the main thread suffices.
#ifndef GRANARY_WORKER_TRAIN_TRAINER_H_
#define GRANARY_WORKER_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/scheduler_client.h"
#include "worker/batch_source.h"
#include "worker/job_config.h"
#include "worker/kv_worker.h"
#include "worker/models/model.h"
#include "worker/reader.h"
#include "worker/step_clock.h"
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

// The merged evaluation of one task. Metrics undefined for the data (no labels; AUC without
// both classes) are nullopt.
struct TaskMetrics {
  std::string task;
  int64_t count = 0;  // labelled evaluation samples, over all workers
  std::optional<double> auc;
  std::optional<double> log_loss;
  std::optional<double> accuracy;
  std::optional<double> rmse;
};

struct EpochReport {
  int epoch = 0;  // from 1; 0 for the evaluation before training
  // This worker's training share.
  int64_t train_samples = 0;
  double train_seconds = 0;
  double samples_per_second = 0;
  // Where the epoch's time went on this worker, summed over its compute threads (so with n
  // threads the three add up to n * train_seconds): blocked on pulls (the next batch's rows
  // were not back yet; with max_staleness also waiting for slower workers), blocked on the
  // previous batch's pushes, and the rest (taking batches from the reader, preparing them,
  // forward and backward).
  double pull_wait_seconds = 0;
  double push_wait_seconds = 0;
  double compute_seconds = 0;
  int threads = 1;
  int64_t chunks = 0;  // work-queue chunks this worker finished
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
  // InvalidArgument if options.threads < 1 or options.max_staleness < 0, or if
  // evaluate_before_training is set without eval files; FailedPrecondition if the cluster lacks
  // the job's tables or their dims do not fit; NotFound if a file pattern matches nothing;
  // otherwise the first error of reading, a pull, a push, a barrier or writing the metrics,
  // naming what failed.
  absl::Status Run(std::vector<EpochReport>* reports);

 private:
  // One batch in the pipeline: its model input and the rows pulled for it.
  struct Slot {
    std::unique_ptr<ModelInput> input;
    std::vector<float> rows;   // [keys, embedding dim]
    std::vector<float> dense;  // the dense table's blocks: offsets from the initial values
    int64_t rows_request = 0;
    int64_t dense_request = 0;
    bool pulling = false;        // requests issued and not yet waited
    int64_t ticket = 0;          // the batch's BatchSource ticket
    int64_t step = 0;            // the batch's step on the replica's clock, if any
    bool pull_deferred = false;  // the clock did not let its pulls start yet
  };
  // What one compute thread owns: a model replica and its buffers.
  struct Replica {
    std::unique_ptr<Model> model;
    Slot slots[2];
    std::vector<float> values;      // w0 + offsets, loaded into the model
    std::vector<float> flat_grads;  // the model's gradients
    std::vector<float> grads;       // padded to whole blocks of the dense table
    std::vector<int64_t> pushes;    // push requests not yet waited
    std::vector<int64_t> pushed;    // BatchSource tickets of the batches those pushes carry
    BatchSource* source = nullptr;  // of the batches being trained
    StepClock* clock = nullptr;     // while training with bounded staleness; else null
    nn::Matrix d_rows;
    std::vector<nn::LossValue> losses;
    absl::Duration pull_wait;  // blocked on pulls and the clock, for the epoch report
    absl::Duration push_wait;
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
  };
  // Runs `step` on the batches `source` hands this replica, the pulls (in `mode`) of the next
  // batch in flight while `step` computes one. Stops at the first error, after waiting for
  // every request it issued.
  absl::Status ForEachBatch(Replica& replica, BatchSource& source, PullMode mode,
                            const std::function<absl::Status(Replica&, Slot&)>& step);
  // Takes the next batch of this worker's share into *slot and issues its pulls. False at the
  // end of the input.
  absl::StatusOr<BatchSource::Take> StartBatch(Replica& replica, BatchSource& source, PullMode mode,
                                               bool may_wait, Batch* batch, Slot* slot);
  // Issues the pulls of the batch in *slot.
  void IssuePulls(Replica& replica, PullMode mode, Slot* slot);
  // If the clock deferred the pulls of *slot: waits for the replica's pushes (its steps must
  // count as finished first), then for the clock, then issues them.
  absl::Status StartDeferredPulls(Replica& replica, PullMode mode, Slot* slot);
  // Waits for the pulls of *slot, if issued; returns the first error.
  absl::Status FinishPulls(Slot* slot);
  // Loads w0 + the pulled offsets into the replica's model and runs Forward on the pulled rows.
  absl::Status Forward(Replica& replica, Slot& slot);
  // Computes the gradients of the batch in `slot` and pushes them, after waiting for the
  // replica's previous pushes.
  absl::Status TrainStep(Replica& replica, Slot& slot);
  // Waits for the replica's pushes; once all succeeded, tells the source their batches are done.
  absl::Status WaitPushes(Replica& replica);
  absl::StatusOr<std::unique_ptr<Reader>> OpenReader(const std::vector<std::string>& files) const;
  absl::Status TrainEpoch(int epoch, EpochReport* report);
  absl::Status Evaluate(int epoch, EpochReport* report);
  absl::Status MergeEvaluation(int epoch, EpochReport* report);
  absl::Status EvaluateRetrieval(int epoch, EpochReport* report);
  absl::Status Barrier(const std::string& name);
  std::string EvalPath(int epoch, int worker) const;

  const JobSpec spec_;
  KVWorker* const kv_;
  SchedulerClient* const scheduler_;
  const TrainerOptions options_;
  int rank_ = 0;
  int num_workers_ = 1;
  std::vector<std::string> train_files_;
  std::vector<std::string> eval_files_;
  std::string metrics_path_;
  std::vector<std::unique_ptr<Replica>> replicas_;  // [options_.threads]
  std::vector<float> initial_values_;               // w0
  std::vector<uint64_t> dense_keys_;                // block keys of the dense table
};

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_TRAINER_H_
