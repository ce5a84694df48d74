#include "worker/train/batch_pipeline.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace granary {
namespace {

// One batch in the pipeline: its model input and the rows pulled for it.
struct Slot {
  std::unique_ptr<ModelInput> input;
  std::vector<float> rows;   // [keys, embedding dim]
  std::vector<float> dense;  // the dense table's blocks: offsets from the initial values
  int64_t rows_request = 0;
  int64_t dense_request = 0;
  bool pulling = false;        // requests issued and not yet waited
  int64_t ticket = 0;          // the batch's BatchSource ticket
  int64_t step = 0;            // the batch's step on the clock, if any
  bool pull_deferred = false;  // the clock did not let its pulls start yet
};

class BatchPipelineImpl : public BatchPipeline {
 public:
  BatchPipelineImpl(std::unique_ptr<Model> model, const PipelineParameters* parameters)
      : model_(std::move(model)), parameters_(*parameters), kv_(*parameters->kv) {
    for (Slot& slot : slots_) slot.input = model_->NewInput();
    grads_.assign(parameters_.dense_keys.size() * parameters_.dense_dim, 0.0f);
  }

  Model& model() override { return *model_; }

  absl::Status Train(BatchSource& source, StepClock* clock, const TrainedFn& trained,
                     PipelineCounters* counters) override {
    clock_ = clock;
    counters_ = PipelineCounters();
    absl::Status status = ForEachBatch(source, PullMode::kTrain, [&](Slot& slot) {
      absl::Status stepped = TrainStep(slot);
      if (stepped.ok()) trained(*slot.input, losses_);
      return stepped;
    });
    clock_ = nullptr;
    *counters = counters_;
    return status;
  }

  absl::Status Evaluate(BatchSource& source, const EvaluatedFn& evaluated) override {
    return ForEachBatch(source, PullMode::kEvaluate, [&](Slot& slot) {
      absl::Status forward = Forward(slot);
      return forward.ok() ? evaluated(*slot.input) : forward;
    });
  }

 private:
  // Runs `step` on the batches `source` hands this pipeline, the pulls (in `mode`) of the
  // next batch in flight while `step` computes one. Stops at the first error, after waiting
  // for every request it issued.
  absl::Status ForEachBatch(BatchSource& source, PullMode mode,
                            const std::function<absl::Status(Slot&)>& step);
  // Takes the next batch of this worker's share into *slot and issues its pulls (or defers
  // them, see StartDeferredPulls). kEnd at the end of the input; an error of the source or of
  // Prepare.
  absl::StatusOr<BatchSource::Take> StartBatch(BatchSource& source, PullMode mode, bool may_wait,
                                               Batch* batch, Slot* slot);
  // Issues the pulls of the batch in *slot.
  void IssuePulls(PullMode mode, Slot* slot);
  // If the clock deferred the pulls of *slot: waits for this pipeline's pushes (its steps
  // must count as finished first), then for the clock, then issues them.
  absl::Status StartDeferredPulls(PullMode mode, Slot* slot);
  // Waits for the pulls of *slot, if issued; returns the first error.
  absl::Status FinishPulls(Slot* slot);
  // Loads w0 + the pulled offsets into the model and runs Forward on the pulled rows.
  absl::Status Forward(Slot& slot);
  // Computes the gradients of the batch in `slot` and pushes them, after waiting for the
  // previous pushes.
  absl::Status TrainStep(Slot& slot);
  // Waits for the pushes in flight; once all succeeded, tells the source their batches are
  // Done and the clock their steps are finished.
  absl::Status WaitPushes();

  const std::unique_ptr<Model> model_;
  const PipelineParameters& parameters_;
  KVWorker& kv_;
  Slot slots_[2];
  std::vector<float> values_;      // w0 + offsets, loaded into the model
  std::vector<float> flat_grads_;  // the model's gradients
  std::vector<float> grads_;       // padded to whole blocks of the dense table
  std::vector<int64_t> pushes_;    // push requests not yet waited
  std::vector<int64_t> pushed_;    // BatchSource tickets of the batches those pushes carry
  BatchSource* source_ = nullptr;  // of the batches being run
  StepClock* clock_ = nullptr;     // while training with bounded staleness; else null
  nn::Matrix d_rows_;
  std::vector<nn::LossValue> losses_;
  PipelineCounters counters_;  // of the running Train call (Evaluate's are not reported)
};

absl::StatusOr<BatchSource::Take> BatchPipelineImpl::StartBatch(BatchSource& source, PullMode mode,
                                                                bool may_wait, Batch* batch,
                                                                Slot* slot) {
  const BatchSource::Take take = source.Next(batch, &slot->ticket, may_wait);
  if (take != BatchSource::Take::kBatch) {
    if (!source.status().ok()) return source.status();
    return take;
  }
  absl::Status status = model_->Prepare(*batch, slot->input.get());
  if (!status.ok()) return status;
  slot->pull_deferred = false;
  if (clock_ != nullptr && mode == PullMode::kTrain) {
    slot->step = clock_->Begin();
    slot->pull_deferred = !clock_->MayStart(slot->step);
  }
  if (!slot->pull_deferred) IssuePulls(mode, slot);
  return BatchSource::Take::kBatch;
}

void BatchPipelineImpl::IssuePulls(PullMode mode, Slot* slot) {
  const std::vector<uint64_t>& dense_keys = parameters_.dense_keys;
  slot->rows_request = kv_.Pull(parameters_.sparse_table, slot->input->keys, &slot->rows, mode);
  slot->dense_request = kv_.Pull(parameters_.dense_table, dense_keys, &slot->dense, mode);
  slot->pulling = true;
  if (mode == PullMode::kTrain) {
    // Keys at their wire size (TableConfig.wire.keys): 8 bytes a key on the raw wire.
    counters_.bytes_sent += static_cast<int64_t>(static_cast<double>(slot->input->keys.size()) *
                                                     kv_.KeyBytesPerKey(parameters_.sparse_table) +
                                                 static_cast<double>(dense_keys.size()) *
                                                     kv_.KeyBytesPerKey(parameters_.dense_table));
    // Values at their wire size (TableConfig.wire): 4 bytes a float on the fp32 wire.
    counters_.bytes_received +=
        static_cast<int64_t>(slot->input->keys.size() * kv_.PullRowBytes(parameters_.sparse_table) +
                             dense_keys.size() * kv_.PullRowBytes(parameters_.dense_table));
  }
}

absl::Status BatchPipelineImpl::StartDeferredPulls(PullMode mode, Slot* slot) {
  if (!slot->pull_deferred) return absl::OkStatus();
  slot->pull_deferred = false;
  absl::Status status = WaitPushes();
  if (status.ok()) status = clock_->WaitToStart(slot->step);
  if (status.ok()) IssuePulls(mode, slot);
  return status;
}

absl::Status BatchPipelineImpl::FinishPulls(Slot* slot) {
  if (!slot->pulling) return absl::OkStatus();
  slot->pulling = false;
  absl::Status rows = kv_.Wait(slot->rows_request);
  absl::Status dense = kv_.Wait(slot->dense_request);
  return rows.ok() ? dense : rows;
}

absl::Status BatchPipelineImpl::WaitPushes() {
  absl::Status status;
  for (int64_t id : pushes_) {
    absl::Status push = kv_.Wait(id);
    if (status.ok()) status = push;
  }
  pushes_.clear();
  if (status.ok()) {
    for (int64_t ticket : pushed_) source_->Done(ticket);
    if (clock_ != nullptr) clock_->Finished(static_cast<int64_t>(pushed_.size()));
  }
  pushed_.clear();
  return status;
}

absl::Status BatchPipelineImpl::ForEachBatch(BatchSource& source, PullMode mode,
                                             const std::function<absl::Status(Slot&)>& step) {
  using Take = BatchSource::Take;
  source_ = &source;
  Batch batch;
  absl::StatusOr<Take> have = StartBatch(source, mode, /*may_wait=*/true, &batch, &slots_[0]);
  absl::Status status = have.status();
  for (int current = 0; status.ok() && *have == Take::kBatch; current = 1 - current) {
    have = StartBatch(source, mode, /*may_wait=*/false, &batch, &slots_[1 - current]);
    const absl::Time waiting = absl::Now();
    status = StartDeferredPulls(mode, &slots_[current]);
    if (status.ok()) status = FinishPulls(&slots_[current]);
    counters_.pull_wait += absl::Now() - waiting;
    if (status.ok()) status = step(slots_[current]);
    if (status.ok()) status = have.status();
    if (status.ok() && *have == Take::kMustWait) {
      // The next batch waits for the scheduler, which may wait for the chunks of the batches
      // this thread pushed: those must be acknowledged (and Done) first.
      status = WaitPushes();
      if (status.ok()) {
        have = StartBatch(source, mode, /*may_wait=*/true, &batch, &slots_[1 - current]);
        status = have.status();
      }
    }
  }
  if (!status.ok()) {
    source.Stop();
    // This thread's unfinished steps never finish: the worker's other threads must not wait
    // for them at the clock.
    if (clock_ != nullptr) clock_->Done();
  }
  // Every request must finish before the slots it writes into are reused.
  for (Slot& slot : slots_) FinishPulls(&slot).IgnoreError();
  absl::Status pushed = WaitPushes();
  return status.ok() ? pushed : status;
}

absl::Status BatchPipelineImpl::Forward(Slot& slot) {
  const std::vector<float>& initial_values = parameters_.initial_values;
  const size_t num_values = initial_values.size();
  if (slot.dense.size() < num_values) {
    return absl::InternalError(
        absl::StrCat("pulled ", slot.dense.size(), " dense floats, need ", num_values));
  }
  values_.resize(num_values);
  for (size_t i = 0; i < num_values; ++i) values_[i] = initial_values[i] + slot.dense[i];
  absl::Status status = model_->params().LoadValues(values_);
  if (!status.ok()) return status;
  const int dim = model_->embedding_dim();
  model_->Forward(*slot.input,
                  nn::ConstMatrixMap(slot.rows.data(),
                                     static_cast<Eigen::Index>(slot.input->keys.size()), dim));
  return absl::OkStatus();
}

absl::Status BatchPipelineImpl::TrainStep(Slot& slot) {
  if (clock_ != nullptr) clock_->Pulled(slot.step);
  // Only this step's Forward and Backward are a training pass (Dropout draws its masks from
  // the replica's seed and step); any other Forward of the model is inference.
  nn::ForwardMode& mode = model_->params().forward_mode();
  mode.training = true;
  ++mode.step;
  absl::Status status = Forward(slot);
  if (status.ok()) model_->Backward(*slot.input, &losses_, &d_rows_);
  mode.training = false;
  if (!status.ok()) return status;
  model_->params().FlattenGrads(&flat_grads_);
  std::copy(flat_grads_.begin(), flat_grads_.end(), grads_.begin());
  // Pushes of the previous batch had this batch's compute time to finish.
  const absl::Time computed = absl::Now();
  status = WaitPushes();
  if (status.ok() && clock_ != nullptr) status = clock_->WaitToPush(slot.step);
  counters_.push_wait += absl::Now() - computed;
  if (!status.ok()) return status;
  const std::vector<uint64_t>& dense_keys = parameters_.dense_keys;
  pushes_.push_back(kv_.Push(parameters_.sparse_table, slot.input->keys,
                             absl::MakeConstSpan(d_rows_.data(), d_rows_.size())));
  pushes_.push_back(kv_.Push(parameters_.dense_table, dense_keys, grads_));
  pushed_.push_back(slot.ticket);
  counters_.bytes_sent +=
      static_cast<int64_t>(static_cast<double>(slot.input->keys.size()) *
                               (kv_.KeyBytesPerKey(parameters_.sparse_table) +
                                static_cast<double>(kv_.PushRowBytes(parameters_.sparse_table))) +
                           static_cast<double>(dense_keys.size()) *
                               (kv_.KeyBytesPerKey(parameters_.dense_table) +
                                static_cast<double>(kv_.PushRowBytes(parameters_.dense_table))));
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<BatchPipeline> BatchPipeline::Create(std::unique_ptr<Model> model,
                                                     const PipelineParameters* parameters) {
  return std::make_unique<BatchPipelineImpl>(std::move(model), parameters);
}

}  // namespace granary
