#include "worker/train/trainer.h"

#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/atomic_file.h"
#include "common/feature_key.h"
#include "glog/logging.h"
#include "worker/line_source.h"
#include "worker/models/model_factory.h"
#include "worker/train/metrics.h"

namespace granary {
namespace {

using nn::Matrix;

// TrainingConfig.chunk_bytes when unset.
constexpr uint64_t kDefaultChunkBytes = 64 << 20;

// Files matching `patterns` (relative ones under `dir`), sorted within each pattern. NotFound
// naming a pattern that matches nothing.
absl::StatusOr<std::vector<std::string>> ExpandPatterns(
    const google::protobuf::RepeatedPtrField<std::string>& patterns, const std::string& dir) {
  std::vector<std::string> files;
  for (const std::string& pattern : patterns) {
    std::filesystem::path path(pattern);
    if (path.is_relative()) path = std::filesystem::path(dir) / path;
    glob_t matches;
    const int result = glob(path.c_str(), 0, nullptr, &matches);
    if (result == 0) {
      for (size_t i = 0; i < matches.gl_pathc; ++i) files.push_back(matches.gl_pathv[i]);
    }
    globfree(&matches);
    if (result != 0) {
      return absl::NotFoundError(absl::StrCat("no file matches '", path.string(), "'"));
    }
  }
  return files;
}

std::string FormatOptional(const std::optional<double>& value) {
  return value.has_value() ? absl::StrFormat("%.6f", *value) : "null";
}

double Sigmoid(float x) { return 1.0 / (1.0 + std::exp(-static_cast<double>(x))); }

}  // namespace

Trainer::Trainer(JobSpec spec, KVWorker* kv, SchedulerClient* scheduler, TrainerOptions options)
    : spec_(std::move(spec)), kv_(kv), scheduler_(scheduler), options_(std::move(options)) {}

absl::Status Trainer::Barrier(const std::string& name) {
  return scheduler_->Barrier(name, "workers",
                             absl::Seconds(spec_.job.training().barrier_timeout_seconds()));
}

std::string Trainer::EvalPath(int epoch, int worker) const {
  return (std::filesystem::path(metrics_path_).parent_path() /
          absl::StrCat("eval-epoch", epoch, "-worker", worker, ".tsv"))
      .string();
}

absl::Status Trainer::Run(std::vector<EpochReport>* reports) {
  if (options_.threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be >= 1, not ", options_.threads));
  }
  const proto::ModelConfig& config = spec_.job.model();
  rank_ = kv_->rank();
  num_workers_ = 0;
  for (const proto::NodeInfo& node : scheduler_->view().nodes()) {
    num_workers_ += node.role() == proto::WORKER;
  }
  num_workers_ = std::max(num_workers_, 1);
  if (kv_->DimOf(config.sparse_table()) != static_cast<int>(config.embedding_dim())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cluster has no table '", config.sparse_table(), "' of dim ",
                     config.embedding_dim(), " (the job's embedding_dim)"));
  }
  const int dense_dim = kv_->DimOf(config.dense_table());
  if (dense_dim < 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cluster has no table '", config.dense_table(), "' for dense blocks"));
  }
  absl::StatusOr<std::vector<std::string>> files =
      ExpandPatterns(spec_.job.training().train_files(), options_.data_dir);
  if (!files.ok()) return files.status();
  train_files_ = *std::move(files);
  files = ExpandPatterns(spec_.job.training().eval_files(), options_.data_dir);
  if (!files.ok()) return files.status();
  eval_files_ = *std::move(files);
  if (options_.evaluate_before_training && eval_files_.empty()) {
    return absl::InvalidArgumentError(
        "evaluation before training needs eval files; the job lists none");
  }
  std::filesystem::path metrics(spec_.job.training().metrics_file());
  if (metrics.is_relative()) metrics = std::filesystem::path(options_.output_dir) / metrics;
  metrics_path_ = metrics.string();
  std::error_code error;
  std::filesystem::create_directories(metrics.parent_path(), error);

  replicas_.clear();
  for (int t = 0; t < options_.threads; ++t) {
    absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, spec_.dataset);
    if (!model.ok()) return model.status();
    auto replica = std::make_unique<Replica>();
    replica->model = *std::move(model);
    replica->model->params().Initialize(spec_.job.training().seed());
    for (Slot& slot : replica->slots) slot.input = replica->model->NewInput();
    replicas_.push_back(std::move(replica));
  }
  replicas_[0]->model->params().FlattenValues(&initial_values_);
  const size_t num_values = initial_values_.size();
  const size_t blocks = (num_values + dense_dim - 1) / dense_dim;
  dense_keys_.clear();
  for (size_t b = 0; b < blocks; ++b) dense_keys_.push_back(DenseBlockKey(config.dense_table(), b));
  for (auto& replica : replicas_) replica->grads.assign(blocks * dense_dim, 0.0f);
  LOG(INFO) << "worker " << rank_ << " of " << num_workers_ << ": " << ArchitectureName(config)
            << " with " << num_values << " dense parameters in " << blocks << " blocks of '"
            << config.dense_table() << "'; " << train_files_.size() << " train and "
            << eval_files_.size() << " eval files; " << options_.threads
            << " compute threads; metrics to " << metrics_path_;

  if (options_.evaluate_before_training) {
    EpochReport report;
    report.threads = options_.threads;
    absl::Status status = Evaluate(/*epoch=*/0, &report);
    if (!status.ok()) return status;
    reports->push_back(std::move(report));
  }
  for (int epoch = 1; epoch <= static_cast<int>(spec_.job.training().epochs()); ++epoch) {
    EpochReport report;
    report.epoch = epoch;
    absl::Status status = TrainEpoch(epoch, &report);
    if (status.ok()) status = Barrier(absl::StrCat("train-epoch-", epoch));
    if (status.ok() && !eval_files_.empty()) status = Evaluate(epoch, &report);
    if (status.ok() && epoch == static_cast<int>(spec_.job.training().epochs()) &&
        !eval_files_.empty() &&
        dynamic_cast<RetrievalModel*>(replicas_[0]->model.get()) != nullptr) {
      status = EvaluateRetrieval(epoch, &report);
    }
    if (!status.ok()) return status;
    reports->push_back(std::move(report));
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchSource::Take> Trainer::StartBatch(Replica& replica, BatchSource& source,
                                                      PullMode mode, bool may_wait, Batch* batch,
                                                      Slot* slot) {
  const BatchSource::Take take = source.Next(batch, &slot->ticket, may_wait);
  if (take != BatchSource::Take::kBatch) {
    if (!source.status().ok()) return source.status();
    return take;
  }
  absl::Status status = replica.model->Prepare(*batch, slot->input.get());
  if (!status.ok()) return status;
  slot->pull_deferred = false;
  if (replica.clock != nullptr && mode == PullMode::kTrain) {
    slot->step = replica.clock->Begin();
    slot->pull_deferred = !replica.clock->MayStart(slot->step);
  }
  if (!slot->pull_deferred) IssuePulls(replica, mode, slot);
  return BatchSource::Take::kBatch;
}

void Trainer::IssuePulls(Replica& replica, PullMode mode, Slot* slot) {
  const proto::ModelConfig& config = spec_.job.model();
  slot->rows_request = kv_->Pull(config.sparse_table(), slot->input->keys, &slot->rows, mode);
  slot->dense_request = kv_->Pull(config.dense_table(), dense_keys_, &slot->dense, mode);
  slot->pulling = true;
  if (mode == PullMode::kTrain) {
    const int64_t keys = static_cast<int64_t>(slot->input->keys.size() + dense_keys_.size());
    replica.bytes_sent += keys * static_cast<int64_t>(sizeof(uint64_t));
    replica.bytes_received +=
        (static_cast<int64_t>(slot->input->keys.size()) * replica.model->embedding_dim() +
         static_cast<int64_t>(replica.grads.size())) *
        static_cast<int64_t>(sizeof(float));
  }
}

absl::Status Trainer::StartDeferredPulls(Replica& replica, PullMode mode, Slot* slot) {
  if (!slot->pull_deferred) return absl::OkStatus();
  slot->pull_deferred = false;
  absl::Status status = WaitPushes(replica);
  if (status.ok()) status = replica.clock->WaitToStart(slot->step);
  if (status.ok()) IssuePulls(replica, mode, slot);
  return status;
}

absl::Status Trainer::FinishPulls(Slot* slot) {
  if (!slot->pulling) return absl::OkStatus();
  slot->pulling = false;
  absl::Status rows = kv_->Wait(slot->rows_request);
  absl::Status dense = kv_->Wait(slot->dense_request);
  return rows.ok() ? dense : rows;
}

absl::Status Trainer::WaitPushes(Replica& replica) {
  absl::Status status;
  for (int64_t id : replica.pushes) {
    absl::Status push = kv_->Wait(id);
    if (status.ok()) status = push;
  }
  replica.pushes.clear();
  if (status.ok()) {
    for (int64_t ticket : replica.pushed) replica.source->Done(ticket);
    if (replica.clock != nullptr) {
      replica.clock->Finished(static_cast<int64_t>(replica.pushed.size()));
    }
  }
  replica.pushed.clear();
  return status;
}

absl::StatusOr<std::unique_ptr<Reader>> Trainer::OpenReader(
    const std::vector<std::string>& files) const {
  ReaderOptions reader_options;
  reader_options.batch_size = static_cast<int>(spec_.job.training().batch_size());
  reader_options.prefetch_batches = options_.prefetch_batches;
  return Reader::Open(spec_.dataset, files, reader_options);
}

absl::Status Trainer::ForEachBatch(Replica& replica, BatchSource& source, PullMode mode,
                                   const std::function<absl::Status(Replica&, Slot&)>& step) {
  using Take = BatchSource::Take;
  Slot* slots = replica.slots;
  replica.source = &source;
  Batch batch;
  absl::StatusOr<Take> have =
      StartBatch(replica, source, mode, /*may_wait=*/true, &batch, &slots[0]);
  absl::Status status = have.status();
  for (int current = 0; status.ok() && *have == Take::kBatch; current = 1 - current) {
    have = StartBatch(replica, source, mode, /*may_wait=*/false, &batch, &slots[1 - current]);
    const absl::Time waiting = absl::Now();
    status = StartDeferredPulls(replica, mode, &slots[current]);
    if (status.ok()) status = FinishPulls(&slots[current]);
    replica.pull_wait += absl::Now() - waiting;
    if (status.ok()) status = step(replica, slots[current]);
    if (status.ok()) status = have.status();
    if (status.ok() && *have == Take::kMustWait) {
      // The next batch waits for the scheduler, which may wait for the chunks of the batches
      // this thread pushed: those must be acknowledged (and Done) first.
      status = WaitPushes(replica);
      if (status.ok()) {
        have = StartBatch(replica, source, mode, /*may_wait=*/true, &batch, &slots[1 - current]);
        status = have.status();
      }
    }
  }
  if (!status.ok()) {
    source.Stop();
    // This thread's unfinished steps never finish: the worker's other threads must not wait
    // for them at the clock.
    if (replica.clock != nullptr) replica.clock->Done();
  }
  // Every request must finish before the slots it writes into are reused.
  for (int i = 0; i < 2; ++i) FinishPulls(&slots[i]).IgnoreError();
  absl::Status pushed = WaitPushes(replica);
  return status.ok() ? pushed : status;
}

absl::Status Trainer::Forward(Replica& replica, Slot& slot) {
  const size_t num_values = initial_values_.size();
  if (slot.dense.size() < num_values) {
    return absl::InternalError(
        absl::StrCat("pulled ", slot.dense.size(), " dense floats, need ", num_values));
  }
  replica.values.resize(num_values);
  for (size_t i = 0; i < num_values; ++i) {
    replica.values[i] = initial_values_[i] + slot.dense[i];
  }
  absl::Status status = replica.model->params().LoadValues(replica.values);
  if (!status.ok()) return status;
  const int dim = replica.model->embedding_dim();
  replica.model->Forward(
      *slot.input, nn::ConstMatrixMap(slot.rows.data(),
                                      static_cast<Eigen::Index>(slot.input->keys.size()), dim));
  return absl::OkStatus();
}

absl::Status Trainer::TrainStep(Replica& replica, Slot& slot) {
  if (replica.clock != nullptr) replica.clock->Pulled(slot.step);
  absl::Status status = Forward(replica, slot);
  if (!status.ok()) return status;
  replica.model->Backward(*slot.input, &replica.losses, &replica.d_rows);
  replica.model->params().FlattenGrads(&replica.flat_grads);
  std::copy(replica.flat_grads.begin(), replica.flat_grads.end(), replica.grads.begin());
  // Pushes of the previous batch had this batch's compute time to finish.
  const absl::Time computed = absl::Now();
  status = WaitPushes(replica);
  if (status.ok() && replica.clock != nullptr) status = replica.clock->WaitToPush(slot.step);
  replica.push_wait += absl::Now() - computed;
  if (!status.ok()) return status;
  const proto::ModelConfig& config = spec_.job.model();
  replica.pushes.push_back(
      kv_->Push(config.sparse_table(), slot.input->keys,
                absl::MakeConstSpan(replica.d_rows.data(), replica.d_rows.size())));
  replica.pushes.push_back(kv_->Push(config.dense_table(), dense_keys_, replica.grads));
  replica.pushed.push_back(slot.ticket);
  replica.bytes_sent += static_cast<int64_t>(slot.input->keys.size() + dense_keys_.size()) *
                            static_cast<int64_t>(sizeof(uint64_t)) +
                        static_cast<int64_t>(replica.d_rows.size() + replica.grads.size()) *
                            static_cast<int64_t>(sizeof(float));
  return absl::OkStatus();
}

absl::Status Trainer::TrainEpoch(int epoch, EpochReport* report) {
  const std::vector<proto::TaskConfig>& tasks = replicas_[0]->model->tasks();
  const size_t num_tasks = tasks.size();
  std::vector<nn::LossValue> epoch_loss(num_tasks), recent_loss(num_tasks);
  const absl::Duration progress_interval =
      absl::Seconds(spec_.job.training().progress_interval_seconds());
  const absl::Time start = absl::Now();
  absl::Time last_progress = start;
  int64_t recent_samples = 0;
  const bool progress_on_terminal = isatty(STDERR_FILENO) == 1;
  for (auto& replica : replicas_) {
    replica->pull_wait = replica->push_wait = absl::ZeroDuration();
    replica->bytes_sent = replica->bytes_received = 0;
  }
  const proto::TrainingConfig& training = spec_.job.training();
  const int max_staleness =
      options_.max_staleness.value_or(training.has_max_staleness() ? training.max_staleness() : -1);
  if (options_.max_staleness.has_value() && *options_.max_staleness < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_staleness must be >= 0, not ", *options_.max_staleness));
  }
  const std::string queue_name = absl::StrCat("train-epoch-", epoch);
  absl::StatusOr<proto::WorkQueueSpec> queue =
      MakeWorkQueueSpec(queue_name, train_files_,
                        training.has_chunk_bytes() ? training.chunk_bytes() : kDefaultChunkBytes);
  if (!queue.ok()) return queue.status();
  if (max_staleness == 0) {
    // Bulk-synchronous: which worker trains which chunk, and in which step, must not depend
    // on timing (with the push turns of StepClock, runs then train alike).
    queue->set_assignment(proto::WorkQueueSpec::ROUND_ROBIN);
    queue->set_num_workers(num_workers_);
  }
  ReaderOptions reader_options;
  reader_options.batch_size = static_cast<int>(training.batch_size());
  reader_options.prefetch_batches = options_.prefetch_batches;
  absl::StatusOr<std::unique_ptr<QueueBatchSource>> opened =
      QueueBatchSource::Open(scheduler_, *std::move(queue), spec_.dataset, reader_options,
                             absl::Seconds(training.barrier_timeout_seconds()));
  if (!opened.ok()) return opened.status();
  QueueBatchSource& source = **opened;
  // Guards the epoch's loss sums, sample counts and the progress line across threads.
  absl::Mutex progress_mutex;

  auto step = [&](Replica& replica, Slot& slot) -> absl::Status {
    absl::Status trained = TrainStep(replica, slot);
    if (!trained.ok()) return trained;
    absl::MutexLock lock(&progress_mutex);
    for (size_t k = 0; k < num_tasks; ++k) {
      epoch_loss[k].total += replica.losses[k].total;
      epoch_loss[k].count += replica.losses[k].count;
      recent_loss[k].total += replica.losses[k].total;
      recent_loss[k].count += replica.losses[k].count;
    }
    report->train_samples += slot.input->batch_size;
    recent_samples += slot.input->batch_size;
    const absl::Time now = absl::Now();
    if (now - last_progress >= progress_interval) {
      std::vector<std::string> parts;
      for (size_t k = 0; k < num_tasks; ++k) {
        parts.push_back(absl::StrFormat("%s %.4f", tasks[k].name(), recent_loss[k].mean()));
        recent_loss[k] = {};
      }
      const std::string progress = absl::StrFormat(
          "worker %d epoch %d: %d samples, %.0f samples/s, loss %s", rank_, epoch,
          report->train_samples,
          static_cast<double>(recent_samples) / absl::ToDoubleSeconds(now - last_progress),
          absl::StrJoin(parts, ", "));
      // On a terminal one line is rewritten in place; logs get one line per interval.
      if (progress_on_terminal) {
        std::fprintf(stderr, "\r%s\x1b[K", progress.c_str());
      } else {
        LOG(INFO) << progress;
      }
      recent_samples = 0;
      last_progress = now;
    }
    return absl::OkStatus();
  };

  // Bounded staleness: the epoch's clock; reports this worker done with it when it goes out of
  // scope, however the epoch ends.
  std::optional<StepClock> clock;
  if (max_staleness >= 0) {
    clock.emplace(scheduler_, queue_name, max_staleness,
                  absl::Seconds(training.barrier_timeout_seconds()));
  }
  for (auto& replica : replicas_) replica->clock = clock.has_value() ? &*clock : nullptr;
  std::vector<absl::Status> statuses(replicas_.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < replicas_.size(); ++t) {
    threads.emplace_back(
        [&, t] { statuses[t] = ForEachBatch(*replicas_[t], source, PullMode::kTrain, step); });
  }
  statuses[0] = ForEachBatch(*replicas_[0], source, PullMode::kTrain, step);
  for (std::thread& thread : threads) thread.join();
  for (auto& replica : replicas_) replica->clock = nullptr;
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
  if (!source.status().ok()) return source.status();
  report->chunks = source.chunks_finished();
  if (progress_on_terminal) std::fprintf(stderr, "\r\x1b[K");
  report->threads = static_cast<int>(replicas_.size());
  report->train_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  absl::Duration pull_wait, push_wait;
  for (const auto& replica : replicas_) {
    pull_wait += replica->pull_wait;
    push_wait += replica->push_wait;
    report->bytes_sent += replica->bytes_sent;
    report->bytes_received += replica->bytes_received;
  }
  report->pull_wait_seconds = absl::ToDoubleSeconds(pull_wait);
  report->push_wait_seconds = absl::ToDoubleSeconds(push_wait);
  report->compute_seconds = report->train_seconds * report->threads - report->pull_wait_seconds -
                            report->push_wait_seconds;
  report->samples_per_second =
      report->train_seconds > 0 ? static_cast<double>(report->train_samples) / report->train_seconds
                                : 0;
  std::vector<std::string> parts;
  for (const nn::LossValue& loss : epoch_loss) {
    report->train_loss.push_back(loss.mean());
  }
  for (size_t k = 0; k < num_tasks; ++k) {
    parts.push_back(absl::StrFormat("%s %.4f", tasks[k].name(), report->train_loss[k]));
  }
  LOG(INFO) << absl::StrFormat(
      "worker %d epoch %d trained: %d samples in %.1f s, %.0f samples/s, %d threads (%.1f s "
      "waiting for pulls, %.1f s for pushes, summed over threads), %.0f bytes sent and %.0f "
      "received per sample, mean loss %s",
      rank_, epoch, report->train_samples, report->train_seconds, report->samples_per_second,
      report->threads, report->pull_wait_seconds, report->push_wait_seconds,
      report->train_samples > 0 ? static_cast<double>(report->bytes_sent) / report->train_samples
                                : 0.0,
      report->train_samples > 0
          ? static_cast<double>(report->bytes_received) / report->train_samples
          : 0.0,
      absl::StrJoin(parts, ", "));
  return absl::OkStatus();
}

// Prediction lines: "<task index>\t<score>\t<label>\t<log loss>". score is the probability
// (BINARY), the predicted class (MULTICLASS) or the prediction (REGRESSION); log loss is the
// sample's cross-entropy (0 for REGRESSION).
absl::Status Trainer::Evaluate(int epoch, EpochReport* report) {
  const std::string path = EvalPath(epoch, rank_);
  const std::string temporary = TemporaryPathOf(path);
  std::ofstream out(temporary, std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", temporary));
  Replica& replica = *replicas_[0];
  const std::vector<proto::TaskConfig>& tasks = replica.model->tasks();
  std::string lines;
  absl::StatusOr<std::unique_ptr<Reader>> reader = OpenReader(eval_files_);
  if (!reader.ok()) return reader.status();
  StripedBatchSource source(*std::move(reader), rank_, num_workers_);
  auto step = [&](Replica& replica, Slot& slot) -> absl::Status {
    absl::Status forward = Forward(replica, slot);
    if (!forward.ok()) return forward;
    lines.clear();
    for (size_t k = 0; k < tasks.size(); ++k) {
      const Matrix& output = replica.model->output(static_cast<int>(k));
      for (int b = 0; b < slot.input->batch_size; ++b) {
        if (!slot.input->has_label[k][b]) continue;
        const float label = slot.input->labels[k][b];
        switch (tasks[k].head()) {
          case proto::TaskConfig::MULTICLASS: {
            Eigen::Index predicted = 0;
            const float top = output.row(b).maxCoeff(&predicted);
            const double log_sum =
                top + std::log((output.row(b).array() - top).exp().cast<double>().sum());
            const double loss = log_sum - output(b, slot.input->classes[k][b]);
            absl::StrAppendFormat(&lines, "%d\t%d\t%g\t%.9g\n", k, predicted, label, loss);
            break;
          }
          case proto::TaskConfig::REGRESSION:
            absl::StrAppendFormat(&lines, "%d\t%.9g\t%g\t0\n", k, output(b, 0), label);
            break;
          default: {
            const double p =
                std::clamp(Sigmoid(output(b, 0)), kLogLossEpsilon, 1 - kLogLossEpsilon);
            const double loss = -(label * std::log(p) + (1 - label) * std::log(1 - p));
            absl::StrAppendFormat(&lines, "%d\t%.9g\t%g\t%.9g\n", k, p, label, loss);
            break;
          }
        }
      }
    }
    out << lines;
    return absl::OkStatus();
  };
  absl::Status status = ForEachBatch(replica, source, PullMode::kEvaluate, step);
  out.close();
  if (status.ok() && !out) status = absl::DataLossError(absl::StrCat("cannot write ", temporary));
  if (status.ok()) status = PublishFile(temporary, path);
  if (status.ok()) status = Barrier(absl::StrCat("eval-epoch-", epoch));
  if (status.ok() && rank_ == 0) status = MergeEvaluation(epoch, report);
  return status;
}

absl::Status Trainer::MergeEvaluation(int epoch, EpochReport* report) {
  const std::vector<proto::TaskConfig>& tasks = replicas_[0]->model->tasks();
  std::vector<std::vector<ScoredLabel>> scored(tasks.size());
  std::vector<double> loss_sum(tasks.size(), 0.0);
  std::vector<int64_t> correct(tasks.size(), 0);
  for (int worker = 0; worker < num_workers_; ++worker) {
    const std::string path = EvalPath(epoch, worker);
    absl::Status status = ForEachLine(path, [&](std::string_view text, uint64_t number) {
      std::vector<absl::string_view> cells =
          absl::StrSplit(absl::string_view(text.data(), text.size()), '\t');
      int task = -1;
      float score = 0, label = 0;
      double loss = 0;
      if (cells.size() != 4 || !absl::SimpleAtoi(cells[0], &task) || task < 0 ||
          task >= static_cast<int>(tasks.size()) || !absl::SimpleAtof(cells[1], &score) ||
          !absl::SimpleAtof(cells[2], &label) || !absl::SimpleAtod(cells[3], &loss)) {
        return absl::DataLossError(absl::StrCat(path, ":", number, ": bad prediction line"));
      }
      scored[task].push_back({score, label});
      loss_sum[task] += loss;
      correct[task] += score == label;
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
  }
  std::vector<std::string> json;
  for (size_t k = 0; k < tasks.size(); ++k) {
    TaskMetrics metrics;
    metrics.task = tasks[k].name();
    metrics.count = static_cast<int64_t>(scored[k].size());
    const double n = static_cast<double>(metrics.count);
    switch (tasks[k].head()) {
      case proto::TaskConfig::MULTICLASS:
        if (metrics.count > 0) {
          metrics.accuracy = static_cast<double>(correct[k]) / n;
          metrics.log_loss = loss_sum[k] / n;
        }
        break;
      case proto::TaskConfig::REGRESSION:
        metrics.rmse = Rmse(scored[k]);
        break;
      default:
        metrics.log_loss = LogLoss(scored[k]);
        metrics.auc = Auc(std::move(scored[k]));
        break;
    }
    LOG(INFO) << absl::StrFormat(
        "epoch %d%s eval %s: %d samples, auc %s, log loss %s, accuracy %s, rmse %s", epoch,
        epoch == 0 ? " (before training)" : "", metrics.task, metrics.count,
        FormatOptional(metrics.auc), FormatOptional(metrics.log_loss),
        FormatOptional(metrics.accuracy), FormatOptional(metrics.rmse));
    json.push_back(absl::StrFormat(
        "\"%s\": {\"count\": %d, \"auc\": %s, \"log_loss\": %s, \"accuracy\": %s, \"rmse\": %s}",
        metrics.task, metrics.count, FormatOptional(metrics.auc), FormatOptional(metrics.log_loss),
        FormatOptional(metrics.accuracy), FormatOptional(metrics.rmse)));
    report->eval.push_back(std::move(metrics));
  }
  std::ofstream out(metrics_path_, std::ios::app);
  if (epoch == 0) {
    out << absl::StrFormat(
        "{\"epoch\": 0, \"before_training\": true, \"workers\": %d, \"eval\": {%s}}\n",
        num_workers_, absl::StrJoin(json, ", "));
  } else {
    std::vector<std::string> train_loss;
    for (size_t k = 0; k < tasks.size(); ++k) {
      train_loss.push_back(absl::StrFormat("\"%s\": %.6f", tasks[k].name(), report->train_loss[k]));
    }
    out << absl::StrFormat(
        "{\"epoch\": %d, \"workers\": %d, \"threads\": %d, \"worker0_train_samples\": %d, "
        "\"worker0_samples_per_second\": %.1f, \"worker0_train_loss\": {%s}, \"eval\": {%s}}\n",
        epoch, num_workers_, report->threads, report->train_samples, report->samples_per_second,
        absl::StrJoin(train_loss, ", "), absl::StrJoin(json, ", "));
  }
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot append to ", metrics_path_));
  return absl::OkStatus();
}

absl::Status Trainer::EvaluateRetrieval(int epoch, EpochReport* report) {
  if (rank_ != 0) return Barrier("retrieval-eval");
  const absl::Time start = absl::Now();
  Replica& replica = *replicas_[0];
  auto* model = static_cast<RetrievalModel*>(replica.model.get());
  RetrievalEvaluator evaluator;
  // Every batch of both inputs, not this worker's share: a source for rank 0 of 1 worker.
  auto pass = [&](const std::vector<std::string>& files, bool train) -> absl::Status {
    absl::StatusOr<std::unique_ptr<Reader>> reader = OpenReader(files);
    if (!reader.ok()) return reader.status();
    StripedBatchSource source(*std::move(reader), 0, 1);
    return ForEachBatch(replica, source, PullMode::kEvaluate, [&](Replica& r, Slot& slot) {
      absl::Status forward = Forward(r, slot);
      if (!forward.ok()) return forward;
      const auto& input = static_cast<const RetrievalInput&>(*slot.input);
      if (train) {
        evaluator.AddTrainBatch(input, *model);
        model->AddActiveUsers(input);
      } else {
        evaluator.AddEvalBatch(input, *model);
      }
      return absl::OkStatus();
    });
  };
  model->StartActiveUsers();
  absl::Status status = pass(train_files_, true);
  if (status.ok()) status = pass(eval_files_, false);
  if (!status.ok()) return status;
  constexpr int kCutoffs[] = {10, 50, 100};
  const RetrievalEvaluation evaluation = evaluator.Evaluate(kCutoffs, *model);
  auto metrics_json = [](const RetrievalMetrics& metrics) {
    std::vector<std::string> parts = {absl::StrFormat("\"queries\": %d", metrics.queries)};
    for (size_t i = 0; i < metrics.ks.size(); ++i) {
      parts.push_back(absl::StrFormat("\"hr@%d\": %.6f", metrics.ks[i], metrics.hit_rates[i]));
    }
    parts.push_back(absl::StrFormat("\"mrr\": %.6f", metrics.mrr));
    return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
  };
  const std::string overall = metrics_json(evaluation.overall);
  const std::string cold = metrics_json(evaluation.cold);
  LOG(INFO) << absl::StrFormat(
      "epoch %d retrieval over %d items (%d cold) in %.1f s: overall %s; cold %s; auc warm %s "
      "(%d samples), cold %s (%d samples); new-item popularity spearman %s",
      epoch, evaluation.corpus_items, evaluation.cold_items,
      absl::ToDoubleSeconds(absl::Now() - start), overall, cold,
      FormatOptional(evaluation.warm_auc), evaluation.warm_samples,
      FormatOptional(evaluation.cold_auc), evaluation.cold_samples,
      FormatOptional(evaluation.new_item_popularity_spearman));
  const std::filesystem::path dir = std::filesystem::path(metrics_path_).parent_path();
  status = evaluator.ExportVectors(
      (dir / "user_vectors.vec").string(), (dir / "item_vectors.vec").string(),
      absl::StrCat(ArchitectureName(spec_.job.model()), " epoch ", epoch));
  if (!status.ok()) return status;
  std::ofstream out(metrics_path_, std::ios::app);
  out << absl::StrFormat(
      "{\"epoch\": %d, \"retrieval\": {\"corpus_items\": %d, \"cold_items\": %d, \"overall\": %s, "
      "\"cold\": %s, \"warm_auc\": %s, \"cold_auc\": %s, "
      "\"new_item_popularity_spearman\": %s}}\n",
      epoch, evaluation.corpus_items, evaluation.cold_items, overall, cold,
      FormatOptional(evaluation.warm_auc), FormatOptional(evaluation.cold_auc),
      FormatOptional(evaluation.new_item_popularity_spearman));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot append to ", metrics_path_));
  report->retrieval = evaluation;
  return Barrier("retrieval-eval");
}

}  // namespace granary
