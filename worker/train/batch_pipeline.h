// BatchPipeline: one compute thread's way of running a model replica over batches against the
// parameter servers, two batches deep.
//
// Per batch: the model (worker/models/model.h) lists the batch's unique embedding keys
// (Model::Prepare); the pipeline pulls their rows from the sparse table and the dense
// parameters from the dense table, loads w0 + the pulled offsets into the model (see
// worker/train/trainer.h "Dense parameters") and runs Forward; training then runs Backward and
// pushes the row gradients and the dense gradient, and the servers apply the optimizers. The
// pulls of batch t + 1 are issued before batch t is computed (the reader parses further ahead
// on its own thread), so the network round trip overlaps the computation; pushes are waited
// one batch later, once the next batch is computed.
//
// Only a training step's Forward and Backward run with the model's ForwardMode.training on
// (worker/nn/forward_mode.h: Dropout acts), each with the next step of the replica's stream;
// Evaluate's Forwards, and any Forward outside Train, are inference passes.
//
// A batch taken from a BatchSource (worker/batch_source.h) is reported Done once its pushes
// are acknowledged, never before: a chunk of the work queue is finished only when every update
// of it reached the servers (the promise consistent checkpoints rest on).
//
// Bounded staleness (a StepClock, worker/step_clock.h): a batch is a step; its pulls are issued
// only once the clock lets the step start, and a step counts as finished once its pushes are
// acknowledged. When the clock does not let the next batch start yet, its pulls are deferred,
// instead of overlapping the computation, until this pipeline's pushes are acknowledged (its
// steps must count first) and the slower workers caught up. Bulk-synchronous clocks also order
// the pushes of a step (StepClock::WaitToPush).
//
// Traffic: Train counts the payload bytes its pulls and pushes carry (8 per key, 4 per float;
// message headers excluded), from the sizes of the arrays handed to the KVWorker (before it
// removes repeated keys).
//
// Thread-compatible: one thread runs a pipeline at a time; the pipelines of one worker may run
// on their own threads concurrently, sharing the KVWorker, the PipelineParameters and a
// BatchSource (which are thread-safe or read-only).
#ifndef GRANARY_WORKER_TRAIN_BATCH_PIPELINE_H_
#define GRANARY_WORKER_TRAIN_BATCH_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "worker/batch_source.h"
#include "worker/kv_worker.h"
#include "worker/models/model.h"
#include "worker/nn/loss.h"
#include "worker/step_clock.h"

namespace granary {

// The batches one pipeline holds taken and not yet Done at most: one whose pushes are waited,
// one being computed and one whose pulls are under way.
inline constexpr int kPipelineBatchesTaken = 3;

// Where a model's parameters live on the servers. Shared, read-only, by every pipeline of a
// worker; must outlive them.
struct PipelineParameters {
  KVWorker* kv = nullptr;  // started; outlives the pipelines
  // The embedding rows of the model's keys.
  std::string sparse_table;
  // The dense parameters' offsets from w0, as blocks of dense_dim floats at dense_keys.
  std::string dense_table;
  int dense_dim = 0;
  std::vector<uint64_t> dense_keys;   // DenseBlockKey(dense_table, b) for b = 0, 1, ...
  std::vector<float> initial_values;  // w0: the dense parameters of every replica's Initialize
};

// Where one Train call's time and traffic went.
struct PipelineCounters {
  // Blocked on pulls: the batch's rows were not back yet, or (bounded staleness) its deferred
  // pulls waited for this pipeline's pushes and for slower workers.
  absl::Duration pull_wait;
  // Blocked on the previous batch's pushes and (bulk-synchronous) on this worker's push turn.
  absl::Duration push_wait;
  // Payload bytes of the pulls and pushes (see above): sent (keys, pushed gradients) and
  // received (pulled rows and dense blocks).
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
};

class BatchPipeline {
 public:
  // Called once per trained batch, after its pushes were issued, with the batch's input and
  // its losses per task (Model::Backward). Runs on the pipeline's thread.
  using TrainedFn =
      std::function<void(const ModelInput& input, absl::Span<const nn::LossValue> losses)>;
  // Called once per evaluated batch, right after Forward: the batch's scores are
  // model().output(k). An error stops the pipeline and is returned by Evaluate.
  using EvaluatedFn = std::function<absl::Status(const ModelInput& input)>;

  // A pipeline running `model` (initialized like every replica of the worker, so that its
  // values are parameters.initial_values) against `parameters`.
  static std::unique_ptr<BatchPipeline> Create(std::unique_ptr<Model> model,
                                               const PipelineParameters* parameters);
  virtual ~BatchPipeline() = default;
  BatchPipeline(const BatchPipeline&) = delete;
  BatchPipeline& operator=(const BatchPipeline&) = delete;

  virtual Model& model() = 0;

  // Trains on every batch `source` hands this pipeline (PullMode::kTrain pulls), gated by
  // `clock` if not null (bounded staleness; else asynchronous), calling `trained` after each
  // batch; sets *counters, however it ends. Returns once the source has no batch left for it
  // and every push is acknowledged. On the first error (of the source, Prepare, a pull, a push
  // or the clock) it stops `source` for every thread and reports this worker done with
  // `clock`, waits for every request it issued, and returns that error.
  virtual absl::Status Train(BatchSource& source, StepClock* clock, const TrainedFn& trained,
                             PipelineCounters* counters) = 0;

  // Runs the model forward on every batch `source` hands this pipeline, with
  // PullMode::kEvaluate pulls (the model on the servers is not changed), calling `evaluated`
  // after each. Errors as Train (plus the first error of `evaluated`).
  virtual absl::Status Evaluate(BatchSource& source, const EvaluatedFn& evaluated) = 0;

 protected:
  BatchPipeline() = default;
};

}  // namespace granary

#endif  // GRANARY_WORKER_TRAIN_BATCH_PIPELINE_H_
