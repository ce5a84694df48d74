#include "worker/train/trainer.h"

#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/feature_key.h"
#include "common/random.h"
#include "glog/logging.h"
#include "worker/batch_source.h"
#include "worker/models/model_factory.h"
#include "worker/models/retrieval_model.h"
#include "worker/reader.h"
#include "worker/step_clock.h"
#include "worker/train/batch_pipeline.h"

namespace granary {
namespace {

// The dropout stream of compute thread `thread` of worker `rank`: the job's seed mixed with
// both, so no two replicas of a run share masks and a rerun draws the same.
uint64_t DropoutSeed(uint64_t job_seed, uint64_t rank, uint64_t thread) {
  uint64_t state = job_seed;
  state = SplitMix64(&state) ^ rank;
  state = SplitMix64(&state) ^ thread;
  return SplitMix64(&state);
}

// TrainingConfig.chunk_bytes when unset.
constexpr uint64_t kDefaultChunkBytes = 64 << 20;

// HitRate cutoffs of the retrieval evaluation.
constexpr int kRetrievalCutoffs[] = {10, 50, 100};

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

// The barriers of a training job, in the order every worker passes them.
std::string TrainBarrier(int epoch) { return absl::StrCat("train-epoch-", epoch); }
std::string EvalBarrier(int epoch) { return absl::StrCat("eval-epoch-", epoch); }
constexpr char kRetrievalBarrier[] = "retrieval-eval";

// "<task> <loss>, ..." for the log lines.
std::string FormatLosses(const std::vector<proto::TaskConfig>& tasks,
                         const std::vector<double>& losses) {
  std::vector<std::string> parts;
  for (size_t k = 0; k < tasks.size(); ++k) {
    parts.push_back(absl::StrFormat("%s %.4f", tasks[k].name(), losses[k]));
  }
  return absl::StrJoin(parts, ", ");
}

// One Trainer::Run: the worker's place in the cluster, the job's files and the compute
// threads' pipelines.
class TrainingRun {
 public:
  TrainingRun(const JobSpec& spec, KVWorker* kv, SchedulerClient* scheduler,
              const TrainerOptions& options)
      : spec_(spec),
        training_(spec.job.training()),
        kv_(kv),
        scheduler_(scheduler),
        options_(options) {}

  // Checks the cluster's tables, expands the file patterns and builds one pipeline per
  // compute thread. Errors as Trainer::Run.
  absl::Status Start();
  // Trains epoch `epoch` on this worker's share of the epoch's work queue, filling the
  // training part of *report.
  absl::Status TrainEpoch(int epoch, EpochReport* report);
  // Writes this worker's predictions of the eval files and, on the lowest-ranked worker alive
  // at the eval barrier (worker 0 unless it died), merges those of the live workers into
  // report->eval and the metrics file.
  absl::Status Evaluate(int epoch, EpochReport* report);
  // Worker 0: the retrieval evaluation into report->retrieval, the metrics file and the
  // vector files; the others wait for it.
  absl::Status EvaluateRetrieval(int epoch, EpochReport* report);
  // Blocks until every worker reached the barrier `name`.
  absl::Status Barrier(const std::string& name);

  bool has_eval_files() const { return !eval_files_.empty(); }
  bool is_retrieval() const {
    return dynamic_cast<RetrievalModel*>(&pipelines_[0]->model()) != nullptr;
  }

 private:
  absl::StatusOr<std::unique_ptr<Reader>> OpenReader(const std::vector<std::string>& files) const;
  // The training batch size, prefetch depth, and the label domains of the model's tasks, so
  // that a label outside its head's domain is a bad line of the reader, not a job failure.
  ReaderOptions MakeReaderOptions() const;
  // The lowest-ranked live worker: merges the prediction files of `workers` (the live ones,
  // ascending) into report->eval and a metrics line that lists them ("eval_workers").
  absl::Status MergeEvaluation(int epoch, const std::vector<int>& workers, EpochReport* report);
  absl::Duration barrier_timeout() const {
    return absl::Seconds(training_.barrier_timeout_seconds());
  }

  const JobSpec& spec_;
  const proto::TrainingConfig& training_;
  KVWorker* const kv_;
  SchedulerClient* const scheduler_;
  const TrainerOptions& options_;
  int rank_ = 0;
  int num_workers_ = 1;
  std::vector<std::string> train_files_;
  std::vector<std::string> eval_files_;
  std::string metrics_path_;
  std::string metrics_dir_;  // the metrics file's folder: prediction and vector files
  PipelineParameters parameters_;
  std::vector<std::unique_ptr<BatchPipeline>> pipelines_;  // [options_.threads]
};

absl::Status TrainingRun::Barrier(const std::string& name) {
  return scheduler_->Barrier(name, "workers", barrier_timeout());
}

absl::StatusOr<std::unique_ptr<Reader>> TrainingRun::OpenReader(
    const std::vector<std::string>& files) const {
  return Reader::Open(spec_.dataset, files, MakeReaderOptions());
}

ReaderOptions TrainingRun::MakeReaderOptions() const {
  ReaderOptions reader_options;
  reader_options.batch_size = static_cast<int>(training_.batch_size());
  reader_options.prefetch_batches = options_.prefetch_batches;
  for (const proto::TaskConfig& task : pipelines_[0]->model().tasks()) {
    if (task.head() == proto::TaskConfig::BINARY) {
      reader_options.label_domains.push_back(
          {task.label_column(), kBinaryLabelClasses, task.name()});
    } else if (task.head() == proto::TaskConfig::MULTICLASS) {
      reader_options.label_domains.push_back(
          {task.label_column(), task.num_classes(), task.name()});
    }
  }
  return reader_options;
}

absl::Status TrainingRun::Start() {
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
      ExpandPatterns(training_.train_files(), options_.data_dir);
  if (!files.ok()) return files.status();
  train_files_ = *std::move(files);
  files = ExpandPatterns(training_.eval_files(), options_.data_dir);
  if (!files.ok()) return files.status();
  eval_files_ = *std::move(files);
  if (options_.evaluate_before_training && eval_files_.empty()) {
    return absl::InvalidArgumentError(
        "evaluation before training needs eval files; the job lists none");
  }
  std::filesystem::path metrics(training_.metrics_file());
  if (metrics.is_relative()) metrics = std::filesystem::path(options_.output_dir) / metrics;
  metrics_path_ = metrics.string();
  metrics_dir_ = metrics.parent_path().string();
  std::error_code error;
  std::filesystem::create_directories(metrics.parent_path(), error);

  std::vector<std::unique_ptr<Model>> models;
  for (int t = 0; t < options_.threads; ++t) {
    absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, spec_.dataset);
    if (!model.ok()) return model.status();
    (*model)->params().Initialize(training_.seed());
    // Each replica its own dropout stream (worker/nn/forward_mode.h), the same on a rerun.
    (*model)->params().forward_mode().seed =
        DropoutSeed(training_.seed(), static_cast<uint64_t>(rank_), static_cast<uint64_t>(t));
    models.push_back(*std::move(model));
  }
  parameters_.kv = kv_;
  parameters_.sparse_table = config.sparse_table();
  parameters_.dense_table = config.dense_table();
  parameters_.dense_dim = dense_dim;
  models[0]->params().FlattenValues(&parameters_.initial_values);
  const size_t num_values = parameters_.initial_values.size();
  const size_t blocks = (num_values + dense_dim - 1) / dense_dim;
  parameters_.dense_keys.clear();
  for (size_t b = 0; b < blocks; ++b) {
    parameters_.dense_keys.push_back(DenseBlockKey(config.dense_table(), b));
  }
  pipelines_.clear();
  for (std::unique_ptr<Model>& model : models) {
    pipelines_.push_back(BatchPipeline::Create(std::move(model), &parameters_));
  }
  LOG(INFO) << "worker " << rank_ << " of " << num_workers_ << ": " << ArchitectureName(config)
            << " with " << num_values << " dense parameters in " << blocks << " blocks of '"
            << config.dense_table() << "'; " << train_files_.size() << " train and "
            << eval_files_.size() << " eval files; " << options_.threads
            << " compute threads; metrics to " << metrics_path_;
  return absl::OkStatus();
}

absl::Status TrainingRun::TrainEpoch(int epoch, EpochReport* report) {
  const std::vector<proto::TaskConfig>& tasks = pipelines_[0]->model().tasks();
  const size_t num_tasks = tasks.size();
  const int max_staleness = options_.max_staleness.value_or(
      training_.has_max_staleness() ? training_.max_staleness() : -1);
  const std::string queue_name = absl::StrCat("train-epoch-", epoch);
  absl::StatusOr<proto::WorkQueueSpec> queue =
      MakeWorkQueueSpec(queue_name, train_files_,
                        training_.has_chunk_bytes() ? training_.chunk_bytes() : kDefaultChunkBytes);
  if (!queue.ok()) return queue.status();
  if (max_staleness == 0) {
    // Bulk-synchronous: which worker trains which chunk, and in which step, must not depend
    // on timing (with the push turns of StepClock, runs then train alike).
    queue->set_assignment(proto::WorkQueueSpec::ROUND_ROBIN);
    queue->set_num_workers(num_workers_);
  }
  // A thread slow on one batch holds the others back rather than let them take batches past
  // the chunk's resume point beyond the bound (worker/batch_source.h).
  absl::StatusOr<std::unique_ptr<QueueBatchSource>> opened = QueueBatchSource::Open(
      scheduler_, *std::move(queue), spec_.dataset, MakeReaderOptions(), barrier_timeout(),
      MaxBatchesPastResume(static_cast<int>(pipelines_.size()), max_staleness));
  if (!opened.ok()) return opened.status();
  QueueBatchSource& source = **opened;

  const absl::Duration progress_interval = absl::Seconds(training_.progress_interval_seconds());
  const absl::Time start = absl::Now();
  const bool progress_on_terminal = isatty(STDERR_FILENO) == 1;
  // Guards the epoch's loss sums, sample counts and the progress line across threads.
  absl::Mutex progress_mutex;
  std::vector<nn::LossValue> epoch_loss(num_tasks), recent_loss(num_tasks);
  absl::Time last_progress = start;
  int64_t recent_samples = 0;
  auto trained = [&](const ModelInput& input, absl::Span<const nn::LossValue> losses) {
    absl::MutexLock lock(&progress_mutex);
    for (size_t k = 0; k < num_tasks; ++k) {
      epoch_loss[k].total += losses[k].total;
      epoch_loss[k].count += losses[k].count;
      recent_loss[k].total += losses[k].total;
      recent_loss[k].count += losses[k].count;
    }
    report->train_samples += input.batch_size;
    recent_samples += input.batch_size;
    const absl::Time now = absl::Now();
    if (now - last_progress < progress_interval) return;
    std::vector<double> recent_means;
    for (nn::LossValue& loss : recent_loss) {
      recent_means.push_back(loss.mean());
      loss = {};
    }
    const std::string progress = absl::StrFormat(
        "worker %d epoch %d: %d samples, %.0f samples/s, loss %s", rank_, epoch,
        report->train_samples,
        static_cast<double>(recent_samples) / absl::ToDoubleSeconds(now - last_progress),
        FormatLosses(tasks, recent_means));
    // On a terminal one line is rewritten in place; logs get one line per interval.
    if (progress_on_terminal) {
      std::fprintf(stderr, "\r%s\x1b[K", progress.c_str());
    } else {
      LOG(INFO) << progress;
    }
    recent_samples = 0;
    last_progress = now;
  };

  // Bounded staleness: the epoch's clock; reports this worker done with it when it goes out of
  // scope, however the epoch ends.
  std::optional<StepClock> clock;
  if (max_staleness >= 0) clock.emplace(scheduler_, queue_name, max_staleness, barrier_timeout());
  StepClock* const gate = clock.has_value() ? &*clock : nullptr;
  std::vector<absl::Status> statuses(pipelines_.size());
  std::vector<PipelineCounters> counters(pipelines_.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < pipelines_.size(); ++t) {
    threads.emplace_back(
        [&, t] { statuses[t] = pipelines_[t]->Train(source, gate, trained, &counters[t]); });
  }
  statuses[0] = pipelines_[0]->Train(source, gate, trained, &counters[0]);
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
  if (!source.status().ok()) return source.status();
  report->chunks = source.chunks_finished();
  report->bad_lines = source.bad_lines();
  report->queue_totals = source.totals();
  if (progress_on_terminal) std::fprintf(stderr, "\r\x1b[K");
  report->threads = static_cast<int>(pipelines_.size());
  report->train_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  absl::Duration pull_wait, push_wait;
  for (const PipelineCounters& thread : counters) {
    pull_wait += thread.pull_wait;
    push_wait += thread.push_wait;
    report->bytes_sent += thread.bytes_sent;
    report->bytes_received += thread.bytes_received;
  }
  report->pull_wait_seconds = absl::ToDoubleSeconds(pull_wait);
  report->push_wait_seconds = absl::ToDoubleSeconds(push_wait);
  report->compute_seconds = report->train_seconds * report->threads - report->pull_wait_seconds -
                            report->push_wait_seconds;
  report->samples_per_second =
      report->train_seconds > 0 ? static_cast<double>(report->train_samples) / report->train_seconds
                                : 0;
  for (const nn::LossValue& loss : epoch_loss) report->train_loss.push_back(loss.mean());
  LOG(INFO) << absl::StrFormat(
      "worker %d epoch %d trained: %d samples in %.1f s, %.0f samples/s, %d threads (%.1f s "
      "waiting for pulls, %.1f s for pushes, summed over threads), %.0f bytes sent and %.0f "
      "received per sample, %d bad lines skipped, mean loss %s",
      rank_, epoch, report->train_samples, report->train_seconds, report->samples_per_second,
      report->threads, report->pull_wait_seconds, report->push_wait_seconds,
      report->train_samples > 0 ? static_cast<double>(report->bytes_sent) / report->train_samples
                                : 0.0,
      report->train_samples > 0
          ? static_cast<double>(report->bytes_received) / report->train_samples
          : 0.0,
      report->bad_lines, FormatLosses(tasks, report->train_loss));
  return absl::OkStatus();
}

absl::Status TrainingRun::Evaluate(int epoch, EpochReport* report) {
  absl::StatusOr<std::unique_ptr<PredictionWriter>> writer =
      PredictionWriter::Open(PredictionPath(metrics_dir_, epoch, rank_));
  if (!writer.ok()) return writer.status();
  absl::StatusOr<std::unique_ptr<Reader>> reader = OpenReader(eval_files_);
  if (!reader.ok()) return reader.status();
  StripedBatchSource source(*std::move(reader), rank_, num_workers_);
  BatchPipeline& pipeline = *pipelines_[0];
  absl::Status status = pipeline.Evaluate(source, [&](const ModelInput& input) {
    (*writer)->Add(pipeline.model(), input);
    return absl::OkStatus();
  });
  // A failed evaluation publishes no prediction file.
  if (status.ok()) status = (*writer)->Finish();
  if (status.ok()) status = Barrier(EvalBarrier(epoch));
  if (!status.ok()) return status;
  // The barrier released once every live worker published its file; a dead worker's may be
  // missing. The lowest-ranked live worker merges those of the live ones.
  const std::vector<int> dead = scheduler_->dead_workers();
  std::vector<int> live;
  for (int worker = 0; worker < num_workers_; ++worker) {
    if (!std::binary_search(dead.begin(), dead.end(), worker)) live.push_back(worker);
  }
  if (!live.empty() && live.front() == rank_) status = MergeEvaluation(epoch, live, report);
  return status;
}

absl::Status TrainingRun::MergeEvaluation(int epoch, const std::vector<int>& workers,
                                          EpochReport* report) {
  const std::vector<proto::TaskConfig>& tasks = pipelines_[0]->model().tasks();
  std::vector<std::string> paths;
  for (int worker : workers) paths.push_back(PredictionPath(metrics_dir_, epoch, worker));
  const std::string eval_workers = absl::StrCat("[", absl::StrJoin(workers, ", "), "]");
  if (static_cast<int>(workers.size()) < num_workers_) {
    LOG(WARNING) << "epoch " << epoch << " eval covers the predictions of workers " << eval_workers
                 << " only: the others died";
  }
  absl::StatusOr<std::vector<TaskMetrics>> merged = MergePredictions(tasks, paths);
  if (!merged.ok()) return merged.status();
  report->eval = *std::move(merged);
  for (const TaskMetrics& metrics : report->eval) {
    LOG(INFO) << absl::StrFormat(
        "epoch %d%s eval %s: %d samples, auc %s, log loss %s, accuracy %s, rmse %s", epoch,
        epoch == 0 ? " (before training)" : "", metrics.task, metrics.count,
        JsonNumber(metrics.auc), JsonNumber(metrics.log_loss), JsonNumber(metrics.accuracy),
        JsonNumber(metrics.rmse));
  }
  if (epoch == 0) {
    return AppendMetricsLine(
        metrics_path_,
        absl::StrFormat(
            "{\"epoch\": 0, \"before_training\": true, \"workers\": %d, \"eval_workers\": %s, "
            "\"eval\": {%s}}",
            num_workers_, eval_workers, TaskMetricsJson(report->eval)));
  }
  std::vector<std::string> train_loss;
  for (size_t k = 0; k < tasks.size(); ++k) {
    train_loss.push_back(absl::StrFormat("\"%s\": %.6f", tasks[k].name(), report->train_loss[k]));
  }
  return AppendMetricsLine(
      metrics_path_,
      absl::StrFormat(
          "{\"epoch\": %d, \"workers\": %d, \"threads\": %d, \"worker%d_train_samples\": %d, "
          "\"worker%d_samples_per_second\": %.1f, \"worker%d_train_loss\": {%s}, "
          "\"worker%d_bad_lines\": %d, \"samples_trained\": %d, \"requeued_chunks\": %d, "
          "\"partial_batches\": %d, \"eval_workers\": %s, \"eval\": {%s}}",
          epoch, num_workers_, report->threads, rank_, report->train_samples, rank_,
          report->samples_per_second, rank_, absl::StrJoin(train_loss, ", "), rank_,
          report->bad_lines, report->queue_totals.samples_trained(),
          report->queue_totals.requeued_chunks(), report->queue_totals.partial_batches(),
          eval_workers, TaskMetricsJson(report->eval)));
}

absl::Status TrainingRun::EvaluateRetrieval(int epoch, EpochReport* report) {
  if (rank_ != 0) return Barrier(kRetrievalBarrier);
  const absl::Time start = absl::Now();
  BatchPipeline& pipeline = *pipelines_[0];
  auto& model = static_cast<RetrievalModel&>(pipeline.model());
  RetrievalEvaluator evaluator;
  // Every batch of both inputs, not this worker's share: a source for rank 0 of 1 worker.
  auto pass = [&](const std::vector<std::string>& files, bool train) -> absl::Status {
    absl::StatusOr<std::unique_ptr<Reader>> reader = OpenReader(files);
    if (!reader.ok()) return reader.status();
    StripedBatchSource source(*std::move(reader), 0, 1);
    return pipeline.Evaluate(source, [&](const ModelInput& batch) {
      const auto& input = static_cast<const RetrievalInput&>(batch);
      if (train) {
        evaluator.AddTrainBatch(input, model);
        model.AddActiveUsers(input);
      } else {
        evaluator.AddEvalBatch(input, model);
      }
      return absl::OkStatus();
    });
  };
  model.StartActiveUsers();
  absl::Status status = pass(train_files_, true);
  if (status.ok()) status = pass(eval_files_, false);
  if (!status.ok()) return status;
  const RetrievalEvaluation evaluation = evaluator.Evaluate(kRetrievalCutoffs, model);
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
      absl::ToDoubleSeconds(absl::Now() - start), overall, cold, JsonNumber(evaluation.warm_auc),
      evaluation.warm_samples, JsonNumber(evaluation.cold_auc), evaluation.cold_samples,
      JsonNumber(evaluation.new_item_popularity_spearman));
  const std::filesystem::path dir(metrics_dir_);
  status = evaluator.ExportVectors(
      (dir / "user_vectors.vec").string(), (dir / "item_vectors.vec").string(),
      absl::StrCat(ArchitectureName(spec_.job.model()), " epoch ", epoch));
  if (!status.ok()) return status;
  status = AppendMetricsLine(
      metrics_path_,
      absl::StrFormat(
          "{\"epoch\": %d, \"retrieval\": {\"corpus_items\": %d, \"cold_items\": %d, \"overall\": "
          "%s, \"cold\": %s, \"warm_auc\": %s, \"cold_auc\": %s, "
          "\"new_item_popularity_spearman\": %s}}",
          epoch, evaluation.corpus_items, evaluation.cold_items, overall, cold,
          JsonNumber(evaluation.warm_auc), JsonNumber(evaluation.cold_auc),
          JsonNumber(evaluation.new_item_popularity_spearman)));
  if (!status.ok()) return status;
  report->retrieval = evaluation;
  return Barrier(kRetrievalBarrier);
}

}  // namespace

JoinPoint FindJoinPoint(const proto::ClusterView& view, int epochs, bool has_eval_files) {
  JoinPoint join;
  if (!view.joined_running_job()) return join;
  const std::set<std::string> released(view.released_barriers().begin(),
                                       view.released_barriers().end());
  // Barriers are released in the order the workers pass them: the last epoch whose last
  // barrier was released, and every epoch before it, are over.
  for (int epoch = epochs; epoch >= 1; --epoch) {
    if (released.count(has_eval_files ? EvalBarrier(epoch) : TrainBarrier(epoch)) > 0) {
      join.first_epoch = epoch + 1;
      break;
    }
  }
  join.evaluate_before_training = join.first_epoch == 1 && released.count(EvalBarrier(0)) == 0 &&
                                  released.count(TrainBarrier(1)) == 0;
  join.retrieval_evaluation = released.count(kRetrievalBarrier) == 0;
  return join;
}

int MaxBatchesPastResume(int threads, int max_staleness) {
  const int per_thread = max_staleness >= 0 ? std::min(kPipelineBatchesTaken, max_staleness + 1)
                                            : kPipelineBatchesTaken;
  return per_thread * threads;
}

absl::Status CheckTrainerOptions(const TrainerOptions& options) {
  if (options.threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be >= 1, not ", options.threads));
  }
  if (options.max_staleness.has_value() && *options.max_staleness < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_staleness must be >= 0, not ", *options.max_staleness));
  }
  return absl::OkStatus();
}

Trainer::Trainer(JobSpec spec, KVWorker* kv, SchedulerClient* scheduler, TrainerOptions options)
    : spec_(std::move(spec)), kv_(kv), scheduler_(scheduler), options_(std::move(options)) {}

absl::Status Trainer::Run(std::vector<EpochReport>* reports) {
  absl::Status status = CheckTrainerOptions(options_);
  if (!status.ok()) return status;
  TrainingRun run(spec_, kv_, scheduler_, options_);
  status = run.Start();
  if (!status.ok()) return status;
  const int epochs = static_cast<int>(spec_.job.training().epochs());
  const JoinPoint join = FindJoinPoint(scheduler_->view(), epochs, run.has_eval_files());
  if (scheduler_->view().joined_running_job()) {
    LOG(INFO) << "worker " << scheduler_->rank() << " joined the running job at epoch "
              << join.first_epoch << " of " << epochs << " ("
              << scheduler_->view().released_barriers_size()
              << " barriers already released); it skips the epochs before it";
  }
  if (options_.evaluate_before_training && join.evaluate_before_training) {
    EpochReport report;
    report.threads = options_.threads;
    status = run.Evaluate(/*epoch=*/0, &report);
    if (!status.ok()) return status;
    reports->push_back(std::move(report));
  }
  const bool retrieval = run.has_eval_files() && run.is_retrieval() && join.retrieval_evaluation;
  for (int epoch = join.first_epoch; epoch <= epochs; ++epoch) {
    EpochReport report;
    report.epoch = epoch;
    status = run.TrainEpoch(epoch, &report);
    if (status.ok()) status = run.Barrier(TrainBarrier(epoch));
    if (status.ok() && run.has_eval_files()) status = run.Evaluate(epoch, &report);
    if (status.ok() && epoch == epochs && retrieval) status = run.EvaluateRetrieval(epoch, &report);
    if (!status.ok()) return status;
    reports->push_back(std::move(report));
  }
  if (join.first_epoch > epochs && retrieval) {
    // Joined after the last epoch's evaluation, before the retrieval evaluation ended.
    EpochReport report;
    report.epoch = epochs;
    status = run.EvaluateRetrieval(epochs, &report);
    if (!status.ok()) return status;
    reports->push_back(std::move(report));
  }
  return absl::OkStatus();
}

}  // namespace granary
