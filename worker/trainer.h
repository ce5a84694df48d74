// Trainer: runs a training job (worker/job_config.h) on one worker of a cluster: epochs of
// data-parallel training against the parameter servers, each followed by an evaluation whose
// metrics are computed over every worker's predictions together.
//
// Per batch: the model (worker/model.h, built by CreateModel from the job's architecture)
// lists the batch's unique embedding keys (Model::Prepare); the
// trainer pulls their rows from the sparse table and the dense parameters from the dense
// table, runs forward and backward, and pushes the row gradients and the dense gradient; the
// servers apply the optimizers. The pulls of batch t + 1 are issued before batch t is
// computed (the reader parses further ahead on its own thread), so the network round trip
// overlaps the computation; pushes are waited one batch later. Consistency is asynchronous
// (DESIGN.md): a batch may read rows that miss the pushes of the last batch or two.
//
// Data split: every worker reads all train (and eval) files in order and keeps the batches
// whose index i satisfies i % num_workers == rank, so the workers see disjoint, equally sized
// shares (within one batch) whatever the number of files. A barrier of all workers ends each
// epoch, so uneven shares end an epoch cleanly.
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
// Retrieval evaluation (models of the two-tower family, worker/retrieval_model.h, after the last
// epoch): worker 0 runs the model over every batch of the train and eval files (not only its
// share), ranks each positive eval sample's item against the whole item corpus
// (worker/retrieval_evaluator.h), logs HitRate@K and MRR overall and on items first seen in
// the eval files, appends them as one JSON line {"epoch": E, "retrieval": {...}} to the
// metrics file, and exports user_vectors.vec and item_vectors.vec (common/vector_file.h)
// beside it; the other workers wait at a barrier.
//
// Thread-compatible: Run uses the calling thread (the Reader and KVWorker add their own).
// That thread needs a few MiB of stack for Eigen (see CMakeLists.txt); the default suffices.
#ifndef GRANARY_WORKER_TRAINER_H_
#define GRANARY_WORKER_TRAINER_H_

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
#include "worker/job_config.h"
#include "worker/kv_worker.h"
#include "worker/model.h"
#include "worker/reader.h"
#include "worker/retrieval_evaluator.h"

namespace granary {

struct TrainerOptions {
  // Relative train/eval file patterns are resolved against this folder.
  std::string data_dir = ".";
  // The job's metrics file (and the eval prediction files beside it) is relative to this.
  std::string output_dir = ".";
  // Finished batches the reader may parse ahead.
  int prefetch_batches = 4;
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
  int epoch = 0;  // from 1
  // This worker's training share.
  int64_t train_samples = 0;
  double train_seconds = 0;
  double samples_per_second = 0;
  // Where the epoch's time went on this worker: blocked on pulls (the next batch's rows were
  // not back yet), blocked on the previous batch's pushes, and the rest (taking batches from
  // the reader, preparing them, forward and backward).
  double pull_wait_seconds = 0;
  double push_wait_seconds = 0;
  double compute_seconds = 0;
  // This worker's mean training loss per task over the epoch, in task order.
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

  // Runs every epoch and its evaluation, appending one report per epoch to *reports.
  // FailedPrecondition if the cluster lacks the job's tables or their dims do not fit;
  // NotFound if a file pattern matches nothing; otherwise the first error of reading, a pull,
  // a push, a barrier or writing the metrics, naming what failed.
  absl::Status Run(std::vector<EpochReport>* reports);

 private:
  // One batch in the pipeline: its model input and the rows pulled for it.
  struct Slot {
    std::unique_ptr<ModelInput> input;
    std::vector<float> rows;   // [keys, embedding dim]
    std::vector<float> dense;  // the dense table's blocks: offsets from the initial values
    int64_t rows_request = 0;
    int64_t dense_request = 0;
    bool pulling = false;  // requests issued and not yet waited
  };

  // Runs `step` on this worker's share of the batches of `files`, the pulls (in `mode`) of the
  // next batch in flight while `step` computes one. Stops at the first error, after waiting
  // for every request it issued.
  absl::Status ForEachBatch(const std::vector<std::string>& files, PullMode mode,
                            const std::function<absl::Status(Slot&)>& step);
  // Reads the next batch of this worker's share into *slot and issues its pulls. False at the
  // end of the input.
  absl::StatusOr<bool> StartBatch(Reader& reader, PullMode mode, int64_t* batch_index, Batch* batch,
                                  Slot* slot);
  // Waits for the pulls of *slot, if issued; returns the first error.
  absl::Status FinishPulls(Slot* slot);
  // Loads w0 + the pulled offsets into the model and runs Forward on the pulled rows.
  absl::Status Forward(Slot& slot);
  absl::Status WaitPushes();
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
  // ForEachBatch runs every batch rather than this worker's share (retrieval evaluation).
  bool every_batch_ = false;
  std::vector<std::string> train_files_;
  std::vector<std::string> eval_files_;
  std::string metrics_path_;
  std::unique_ptr<Model> model_;
  std::vector<float> initial_values_;  // w0
  std::vector<float> values_;          // w0 + offsets, loaded into the model
  std::vector<float> grads_;           // padded to whole blocks of the dense table
  absl::Duration pull_wait_;           // time blocked in FinishPulls, for the epoch report
  std::vector<uint64_t> dense_keys_;   // block keys of the dense table
  std::vector<int64_t> pushes_;        // push requests not yet waited
  model::Matrix d_rows_;
  std::vector<model::LossValue> losses_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TRAINER_H_
