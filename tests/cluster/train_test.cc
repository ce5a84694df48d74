// End to end: DUPN trained by 2 workers against 2 servers (in-process cluster, real TCP) on a
// synthetic multi-task dataset with a known structure must beat chance clearly on held-out
// data, and the metrics must be merged over both workers. Poisoned lines in its input must
// cost their lines and nothing else.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "ps/embedding_table.h"
#include "ps/row_layout.h"
#include "ps/table_catalog.h"
#include "tests/testing/in_process_cluster.h"
#include "tests/testing/synthetic_clicks.h"
#include "worker/train/trainer.h"

namespace granary {
namespace {

JobSpec TrainJob() {
  JobSpec spec;
  EXPECT_TRUE(ParseTextProto(kSyntheticClicksDataset, "dataset", &spec.dataset).ok());
  EXPECT_TRUE(ParseTextProto(kSyntheticClicksJob, "job", &spec.job).ok());
  *spec.job.mutable_dataset() = spec.dataset;
  EXPECT_TRUE(ValidateJobConfig(spec.job, spec.dataset, "job", nullptr).ok());
  return spec;
}

// Trains `spec` with `num_workers` workers of `threads` compute threads each against 2
// servers on the data write_data(dir) writes into folder `dir`, asynchronously or with
// `max_staleness`; calls inspect(cluster) once every worker is done, before the cluster
// stops. Returns every worker's reports.
std::vector<std::vector<EpochReport>> TrainOnCluster(
    const std::string& dir, int num_workers, int threads,
    std::optional<int> max_staleness = std::nullopt, const JobSpec& spec = TrainJob(),
    const std::function<void(const std::string&)>& write_data = WriteSyntheticClicks,
    const std::function<void(InProcessCluster&)>& inspect = nullptr,
    const proto::ClusterConfig& cluster_config = SyntheticClicksClusterConfig()) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  write_data(dir);

  InProcessClusterOptions options;
  options.num_servers = 2;
  options.num_workers = num_workers;
  options.config = cluster_config;
  InProcessCluster cluster(options);
  EXPECT_TRUE(cluster.Start().ok());

  std::vector<absl::Status> status(num_workers);
  std::vector<std::vector<EpochReport>> reports(num_workers);
  std::vector<std::thread> workers;
  for (int w = 0; w < num_workers; ++w) {
    workers.emplace_back([&, w] {
      TrainerOptions trainer_options;
      trainer_options.data_dir = dir;
      trainer_options.output_dir = dir;
      trainer_options.threads = threads;
      trainer_options.max_staleness = max_staleness;
      Trainer trainer(spec, &cluster.worker(w), &cluster.worker_client(w), trainer_options);
      status[w] = trainer.Run(&reports[w]);
    });
  }
  for (std::thread& worker : workers) worker.join();
  if (inspect) inspect(cluster);
  cluster.Stop();
  for (int w = 0; w < num_workers; ++w) EXPECT_TRUE(status[w].ok()) << status[w];
  return reports;
}

// The merged evaluation of the last epoch beats the bar on held-out data, and improved on
// the first epoch's.
void ExpectLearnedTheClickModel(const std::vector<EpochReport>& merged) {
  ASSERT_EQ(merged.size(), 12u);
  const TaskMetrics& click = merged.back().eval[0];
  EXPECT_EQ(click.count, kUsers * kEvalEventsPerUser);
  ASSERT_TRUE(click.auc.has_value());
  EXPECT_GE(*click.auc, 0.75) << "first epoch AUC " << merged.front().eval[0].auc.value_or(-1);
  EXPECT_GT(*click.auc, *merged.front().eval[0].auc);
  const TaskMetrics& score = merged.back().eval[1];
  ASSERT_TRUE(score.rmse.has_value());
}

TEST(TrainTest, TwoWorkersLearnTheSyntheticClickModel) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/train_test-", getpid());
  std::vector<std::vector<EpochReport>> reports = TrainOnCluster(dir, 2, 1);
  ASSERT_EQ(reports.size(), 2u);
  ASSERT_FALSE(reports[0].empty());
  ASSERT_FALSE(reports[1].empty());
  // Worker 0 (rank 0 may be either thread) holds the merged evaluation.
  const int first = reports[0].front().eval.empty() ? 1 : 0;
  EXPECT_TRUE(reports[1 - first].back().eval.empty());
  // The workers took the chunks of the work queue between them: both trained, and together
  // they trained every sample exactly once.
  EXPECT_EQ(reports[0].back().train_samples + reports[1].back().train_samples,
            kUsers * kTrainEventsPerUser);
  EXPECT_GT(reports[0].back().chunks, 0);
  EXPECT_GT(reports[1].back().chunks, 0);
  ExpectLearnedTheClickModel(reports[first]);
  // Both workers got the scheduler's records of each epoch: every sample trained once.
  for (const std::vector<EpochReport>& worker : reports) {
    for (const EpochReport& report : worker) {
      if (report.epoch == 0) continue;
      EXPECT_EQ(report.queue_totals.samples_trained(), kUsers * kTrainEventsPerUser)
          << "epoch " << report.epoch;
      EXPECT_EQ(report.queue_totals.requeued_chunks(), 0u);
      EXPECT_EQ(report.queue_totals.partial_batches(), 0u);
    }
  }

  std::ifstream metrics(dir + "/out/metrics.jsonl");
  std::string line;
  int lines = 0;
  const std::string totals = absl::StrCat("\"samples_trained\": ", kUsers * kTrainEventsPerUser,
                                          ", \"requeued_chunks\": 0, \"partial_batches\": 0");
  while (std::getline(metrics, line)) {
    // The line before training has no training totals; every epoch's line has them.
    if (lines++ > 0) {
      EXPECT_NE(line.find(totals), std::string::npos) << line;
    }
  }
  EXPECT_EQ(lines, 12);
}

// Trains with 2 workers of `threads` compute threads each and `max_staleness`, checks that
// together they trained every sample once per epoch and that the model learned, and returns
// the reports by rank (rank 0's, which hold the merged evaluation, first).
std::vector<std::vector<EpochReport>> TrainTwoWorkersAndCheck(const std::string& dir, int threads,
                                                              int max_staleness) {
  std::vector<std::vector<EpochReport>> reports = TrainOnCluster(dir, 2, threads, max_staleness);
  if (reports.size() != 2 || reports[0].empty() || reports[1].empty()) {
    ADD_FAILURE() << "a worker reported no epoch";
    return {{}, {}};
  }
  EXPECT_EQ(reports[0].back().train_samples + reports[1].back().train_samples,
            kUsers * kTrainEventsPerUser);
  const int first = reports[0].front().eval.empty() ? 1 : 0;
  ExpectLearnedTheClickModel(reports[first]);
  return {reports[first], reports[1 - first]};
}

// Bounded-stale training (s = 2) with 2 workers of two compute threads each.
TEST(TrainTest, BoundedStaleWorkersLearnTheSyntheticClickModel) {
  TrainTwoWorkersAndCheck(absl::StrCat(::testing::TempDir(), "/train_test_ssp-", getpid()),
                          /*threads=*/2, /*max_staleness=*/2);
}

// Bulk-synchronous training (s = 0) is deterministic (worker/step_clock.h): two runs of 2
// workers give the same metrics after every epoch, to the last bit, and the model learns.
TEST(TrainTest, BulkSynchronousRunsTrainBitForBitAlike) {
  std::vector<std::vector<EpochReport>> by_rank[2];  // per run: rank 0's reports, rank 1's
  for (int run = 0; run < 2; ++run) {
    by_rank[run] = TrainTwoWorkersAndCheck(
        absl::StrCat(::testing::TempDir(), "/train_test_bsp", run, "-", getpid()), /*threads=*/1,
        /*max_staleness=*/0);
  }
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_EQ(by_rank[0][rank].size(), by_rank[1][rank].size());
    for (size_t e = 0; e < by_rank[0][rank].size(); ++e) {
      const EpochReport& one = by_rank[0][rank][e];
      const EpochReport& two = by_rank[1][rank][e];
      EXPECT_EQ(one.train_samples, two.train_samples) << "rank " << rank << " epoch " << e;
      EXPECT_EQ(one.train_loss, two.train_loss) << "rank " << rank << " epoch " << e;
      ASSERT_EQ(one.eval.size(), two.eval.size());
      for (size_t k = 0; k < one.eval.size(); ++k) {
        EXPECT_EQ(one.eval[k].auc, two.eval[k].auc) << "epoch " << e << " task " << k;
        EXPECT_EQ(one.eval[k].log_loss, two.eval[k].log_loss) << "epoch " << e << " task " << k;
        EXPECT_EQ(one.eval[k].rmse, two.eval[k].rmse) << "epoch " << e << " task " << k;
      }
    }
  }
}

TEST(TrainTest, TwoComputeThreadsLearnTheSyntheticClickModel) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/train_test_threads-", getpid());
  std::vector<std::vector<EpochReport>> reports = TrainOnCluster(dir, 1, 2);
  ASSERT_EQ(reports.size(), 1u);
  ASSERT_FALSE(reports[0].empty());
  const EpochReport& last = reports[0].back();
  EXPECT_EQ(last.threads, 2);
  // The two threads shared the batches: every sample trained once per epoch.
  EXPECT_EQ(last.train_samples, kUsers * kTrainEventsPerUser);
  // Each sample pulls and pushes at least its own keys.
  EXPECT_GT(last.bytes_sent, last.train_samples * static_cast<int64_t>(sizeof(uint64_t)));
  EXPECT_GT(last.bytes_received, 0);
  ExpectLearnedTheClickModel(reports[0]);
}

// The light wire (fp16 pulls, int8 pushes with error feedback, on every table) moves at most
// half the bytes per sample of fp32 and learns the same model: bulk-synchronous runs, so that
// the two differ by the wire alone.
TEST(TrainTest, LightWireLearnsWhatFp32LearnsWithHalfTheBytes) {
  proto::ClusterConfig light = SyntheticClicksClusterConfig();
  for (proto::TableConfig& table : *light.mutable_tables()) {
    table.mutable_wire()->set_pull_values(proto::VALUES_FP16);
    table.mutable_wire()->set_push_values(proto::VALUES_INT8);
  }
  std::vector<EpochReport> runs[2];
  for (int run = 0; run < 2; ++run) {
    const std::string dir =
        absl::StrCat(::testing::TempDir(), "/train_test_wire", run, "-", getpid());
    std::vector<std::vector<EpochReport>> reports =
        TrainOnCluster(dir, 1, 1, /*max_staleness=*/0, TrainJob(), WriteSyntheticClicks, nullptr,
                       run == 0 ? SyntheticClicksClusterConfig() : light);
    ASSERT_EQ(reports.size(), 1u);
    ExpectLearnedTheClickModel(reports[0]);
    runs[run] = reports[0];
  }
  const EpochReport& fp32 = runs[0].back();
  const EpochReport& lighter = runs[1].back();
  ASSERT_EQ(fp32.train_samples, lighter.train_samples);
  EXPECT_LE(lighter.bytes_sent + lighter.bytes_received,
            (fp32.bytes_sent + fp32.bytes_received) / 2);
  // The synthetic eval set is small: any change of trajectory moves its AUC by about 0.01 (the
  // light wire's on MovieLens, within 0.001, is train_bench's, docs/performance.md).
  EXPECT_NEAR(*lighter.eval[0].auc, *fp32.eval[0].auc, 0.02);
}

// Elias-Fano keys (wire.keys on every table) are lossless: a bulk-synchronous run learns the
// model raw keys learn, with the same values received and fewer bytes sent (the key frames'
// measured size, not 8 bytes a key).
TEST(TrainTest, EliasFanoKeysLearnWhatRawKeysLearnWithFewerBytesSent) {
  proto::ClusterConfig encoded = SyntheticClicksClusterConfig();
  for (proto::TableConfig& table : *encoded.mutable_tables()) {
    table.mutable_wire()->set_keys(proto::KEYS_ELIAS_FANO);
  }
  std::vector<EpochReport> runs[2];
  for (int run = 0; run < 2; ++run) {
    const std::string dir =
        absl::StrCat(::testing::TempDir(), "/train_test_keys", run, "-", getpid());
    std::vector<std::vector<EpochReport>> reports =
        TrainOnCluster(dir, 1, 1, /*max_staleness=*/0, TrainJob(), WriteSyntheticClicks, nullptr,
                       run == 0 ? SyntheticClicksClusterConfig() : encoded);
    ASSERT_EQ(reports.size(), 1u);
    ExpectLearnedTheClickModel(reports[0]);
    runs[run] = reports[0];
  }
  const EpochReport& raw = runs[0].back();
  const EpochReport& elias_fano = runs[1].back();
  ASSERT_EQ(raw.train_samples, elias_fano.train_samples);
  EXPECT_EQ(elias_fano.bytes_received, raw.bytes_received);
  EXPECT_LT(elias_fano.bytes_sent, raw.bytes_sent);
  EXPECT_NEAR(*elias_fano.eval[0].auc, *raw.eval[0].auc, 1e-6);
}

// Poisoned input (PoisonedLinesCostTheirLinesAndNothingElse): one poisoned line after every
// kPoisonEvery-th data line of train.tsv, so they reach many chunks, both workers and every
// part of the file.
constexpr int kPoisonEvery = 400;
// Small bounds for the poisoned job's dataset, so its over-long lines stay light.
constexpr uint64_t kPoisonMaxLineBytes = 1024;
constexpr uint32_t kPoisonMaxSequenceSteps = 16;

// Lines of the synthetic dataset's columns (click, score, user_id, item_id, history) that are
// good but for one cell each.
std::vector<std::string> PoisonedLines() {
  return {
      "1\t0.5\t3\t7\t5,1;6,3e38",  // a NUMERIC step field of 3e38 (beyond max_abs_numeric)
      "7\t0.5\t3\t7\t5,1;6,0",     // a BINARY label of 7
      "1\tnan\t3\t7\t5,1;6,0",     // a non-finite REGRESSION label
      "-inf\t0.5\t3\t7\t5,1;6,0",  // a non-finite BINARY label
      absl::StrCat("1\t0.5\t", std::string(2 * kPoisonMaxLineBytes, 'u'), "\t7\t5,1"),
      absl::StrCat(
          "1\t0.5\t3\t7\t",
          absl::StrJoin(std::vector<std::string>(2 * kPoisonMaxSequenceSteps, "5,1"), ";")),
  };
}

// Writes the synthetic clicks with PoisonedLines() inserted in turn into train.tsv after every
// kPoisonEvery-th data line; returns how many it inserted.
int WritePoisonedClicks(const std::string& dir) {
  WriteSyntheticClicks(dir);
  const std::string path = dir + "/train.tsv";
  std::vector<std::string> lines;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  const std::vector<std::string> poison = PoisonedLines();
  std::ofstream out(path, std::ios::trunc);
  int inserted = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    out << lines[i] << "\n";
    if (i > 0 && i % kPoisonEvery == 0) out << poison[inserted++ % poison.size()] << "\n";
  }
  return inserted;
}

// Every value and optimizer slot of every row the servers store is finite, no push was
// refused as non-finite, and both tables hold rows.
void ExpectTheServersHoldOnlyFiniteValues(InProcessCluster& cluster, int num_servers) {
  for (const std::string name : {"emb", "dense"}) {
    int64_t rows = 0;
    for (int s = 0; s < num_servers; ++s) {
      EXPECT_EQ(cluster.server(s).non_finite_pushes(), 0u) << "server " << s;
      EmbeddingTable* table = cluster.server(s).catalog()->Find(name);
      ASSERT_NE(table, nullptr) << name;
      const RowLayout& layout = table->layout();
      const int floats = layout.dim() * (1 + layout.num_slots());
      const absl::Status read = table->ForEachStoredRow([&](uint64_t key, const char* record) {
        ++rows;
        const float* values = layout.values(record);
        for (int i = 0; i < floats; ++i) {
          if (!std::isfinite(values[i])) {
            return absl::DataLossError(absl::StrCat("server ", s, " table '", name, "' key ", key,
                                                    " float ", i, ": ", values[i]));
          }
        }
        return absl::OkStatus();
      });
      EXPECT_TRUE(read.ok()) << read;
    }
    EXPECT_GT(rows, 0) << name;
  }
}

// The mean squared value of the rows of table `name` the servers store.
double MeanSquaredValue(InProcessCluster& cluster, int num_servers, const std::string& name) {
  double sum = 0;
  int64_t values = 0;
  for (int s = 0; s < num_servers; ++s) {
    EmbeddingTable* table = cluster.server(s).catalog()->Find(name);
    EXPECT_NE(table, nullptr) << name;
    if (table == nullptr) return 0;
    const RowLayout& layout = table->layout();
    EXPECT_TRUE(table
                    ->ForEachStoredRow([&](uint64_t, const char* record) {
                      const float* row = layout.values(record);
                      for (int d = 0; d < layout.dim(); ++d) sum += double{row[d]} * row[d];
                      values += layout.dim();
                      return absl::OkStatus();
                    })
                    .ok());
  }
  EXPECT_GT(values, 0) << name;
  return values > 0 ? sum / static_cast<double>(values) : 0;
}

// TableConfig.l2 on the embedding table: the same job on the same data ends with smaller
// embeddings than without it, and still learns the click model. (l2 0.01 about halves the mean
// squared value: 0.093 against 0.179 when written.)
TEST(TrainTest, TableL2KeepsEmbeddingsSmaller) {
  constexpr int kServers = 2, kEpochs = 12;  // the job's: fewer do not learn the model yet
  const JobSpec spec = TrainJob();
  double mean_square[2] = {0, 0};
  for (int run = 0; run < 2; ++run) {
    proto::ClusterConfig config = SyntheticClicksClusterConfig();
    if (run == 1) config.mutable_tables(0)->set_l2(0.01f);
    ASSERT_EQ(config.tables(0).name(), "emb");
    const std::string dir =
        absl::StrCat(::testing::TempDir(), "/train_test_l2-", getpid(), "-", run);
    std::vector<std::vector<EpochReport>> reports = TrainOnCluster(
        dir, 1, 1, std::nullopt, spec, WriteSyntheticClicks,
        [&](InProcessCluster& cluster) {
          mean_square[run] = MeanSquaredValue(cluster, kServers, "emb");
        },
        config);
    ASSERT_EQ(reports[0].size(), static_cast<size_t>(kEpochs));
    ASSERT_TRUE(reports[0].back().eval[0].auc.has_value());
    EXPECT_GE(*reports[0].back().eval[0].auc, 0.7) << "run " << run;
    std::filesystem::remove_all(dir);
  }
  EXPECT_LT(mean_square[1], 0.8 * mean_square[0])
      << "with l2 " << mean_square[1] << ", without " << mean_square[0];
}

// TaskConfig.dropout acts in training (the trainer turns it on for each step): the same job
// on the same data trains differently with it, and still learns the click model.
TEST(TrainTest, HeadDropoutChangesTrainingAndStillLearns) {
  constexpr int kEpochs = 12;  // the job's: fewer do not learn the model yet
  double last_loss[2] = {0, 0};
  for (int run = 0; run < 2; ++run) {
    JobSpec spec = TrainJob();
    if (run == 1) spec.job.mutable_model()->mutable_tasks(0)->set_dropout(0.5f);
    const std::string dir =
        absl::StrCat(::testing::TempDir(), "/train_test_dropout-", getpid(), "-", run);
    std::vector<std::vector<EpochReport>> reports = TrainOnCluster(dir, 1, 1, std::nullopt, spec);
    ASSERT_EQ(reports[0].size(), static_cast<size_t>(kEpochs));
    ASSERT_TRUE(reports[0].back().eval[0].auc.has_value());
    EXPECT_GE(*reports[0].back().eval[0].auc, 0.7) << "run " << run;
    last_loss[run] = reports[0].back().train_loss[0];
    std::filesystem::remove_all(dir);
  }
  // Dropping half the head's units makes its training loss (measured on the dropped network)
  // clearly higher.
  EXPECT_GT(last_loss[1], last_loss[0] * 1.02) << "without " << last_loss[0];
}

// The mean training loss of task k in epoch e over the workers that trained samples.
double EpochLoss(const std::vector<std::vector<EpochReport>>& reports, size_t e, size_t k) {
  double total = 0;
  int64_t samples = 0;
  for (const std::vector<EpochReport>& worker : reports) {
    if (worker[e].train_samples == 0) continue;
    total += worker[e].train_loss[k] * static_cast<double>(worker[e].train_samples);
    samples += worker[e].train_samples;
  }
  return samples > 0 ? total / static_cast<double>(samples) : 0;
}

// Input poisoned the ways issue 15 met it (a NUMERIC value of 3e38, a BINARY label of 7,
// non-finite labels, a line over max_line_bytes, a sequence over max_sequence_steps), spread
// through train.tsv, costs its lines and nothing else: each is a bad line, counted in the
// epoch's reports and metrics line; the job completes, trains every good sample once per
// epoch with a clean run's losses and AUC, and the servers hold no non-finite value.
TEST(TrainTest, PoisonedLinesCostTheirLinesAndNothingElse) {
  JobSpec spec = TrainJob();
  spec.dataset.set_max_line_bytes(kPoisonMaxLineBytes);
  for (proto::ColumnConfig& column : *spec.dataset.mutable_columns()) {
    if (column.role() == proto::ColumnConfig::SEQUENCE) {
      column.set_max_sequence_steps(kPoisonMaxSequenceSteps);
    }
  }
  *spec.job.mutable_dataset() = spec.dataset;
  ASSERT_TRUE(ValidateJobConfig(spec.job, spec.dataset, "job", nullptr).ok());
  const std::string dir = absl::StrCat(::testing::TempDir(), "/train_test_poison-", getpid());
  constexpr int kWorkers = 2;
  constexpr int kServers = 2;  // TrainOnCluster's

  const std::vector<std::vector<EpochReport>> clean =
      TrainOnCluster(dir + "/clean", kWorkers, 1, std::nullopt, spec);
  int poisoned = 0;
  const std::vector<std::vector<EpochReport>> dirty = TrainOnCluster(
      dir + "/poisoned", kWorkers, 1, std::nullopt, spec,
      [&](const std::string& data) { poisoned = WritePoisonedClicks(data); },
      [&](InProcessCluster& cluster) { ExpectTheServersHoldOnlyFiniteValues(cluster, kServers); });
  ASSERT_EQ(poisoned, kUsers * kTrainEventsPerUser / kPoisonEvery);

  ASSERT_EQ(clean.size(), 2u);
  ASSERT_EQ(dirty.size(), 2u);
  const size_t epochs = spec.job.training().epochs();
  for (int w = 0; w < kWorkers; ++w) {
    ASSERT_EQ(clean[w].size(), epochs);
    ASSERT_EQ(dirty[w].size(), epochs);
  }
  const size_t num_tasks = spec.job.model().tasks_size();
  for (size_t e = 0; e < epochs; ++e) {
    EXPECT_EQ(clean[0][e].bad_lines + clean[1][e].bad_lines, 0) << "epoch " << e + 1;
    EXPECT_EQ(dirty[0][e].bad_lines + dirty[1][e].bad_lines, poisoned) << "epoch " << e + 1;
    EXPECT_EQ(dirty[0][e].train_samples + dirty[1][e].train_samples, kUsers * kTrainEventsPerUser)
        << "epoch " << e + 1;
    EXPECT_EQ(dirty[0][e].queue_totals.samples_trained(), kUsers * kTrainEventsPerUser)
        << "epoch " << e + 1;
    for (size_t k = 0; k < num_tasks; ++k) {
      const double clean_loss = EpochLoss(clean, e, k);
      const double dirty_loss = EpochLoss(dirty, e, k);
      EXPECT_TRUE(std::isfinite(dirty_loss)) << "epoch " << e + 1 << " task " << k;
      EXPECT_LT(dirty_loss, 2 * clean_loss) << "epoch " << e + 1 << " task " << k;
    }
  }

  const int clean_first = clean[0].front().eval.empty() ? 1 : 0;
  const int dirty_first = dirty[0].front().eval.empty() ? 1 : 0;
  ExpectLearnedTheClickModel(dirty[dirty_first]);
  const std::optional<double> clean_auc = clean[clean_first].back().eval[0].auc;
  const std::optional<double> dirty_auc = dirty[dirty_first].back().eval[0].auc;
  ASSERT_TRUE(clean_auc.has_value());
  ASSERT_TRUE(dirty_auc.has_value());
  EXPECT_NEAR(*dirty_auc, *clean_auc, 0.02);

  // Rank 0 writes the metrics line, with its own bad lines.
  std::ifstream metrics(dir + "/poisoned/out/metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line)) last = line;
  EXPECT_NE(
      last.find(absl::StrCat("\"worker0_bad_lines\": ", dirty[dirty_first].back().bad_lines, ",")),
      std::string::npos)
      << last;
}

TEST(TrainTest, MissingTablesAndFilesAreNamedErrors) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/train_test_errors-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  InProcessClusterOptions options;
  options.num_servers = 1;
  options.num_workers = 1;
  options.config = SgdTablesConfig({{"emb", 4}, {"dense", 16}}, 0.1f);
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  TrainerOptions trainer_options;
  trainer_options.data_dir = dir;
  trainer_options.output_dir = dir;
  std::vector<EpochReport> reports;

  // The job wants "emb" of dim 8.
  Trainer wrong_dim(TrainJob(), &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  absl::Status status = wrong_dim.Run(&reports);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("'emb' of dim 8"), std::string::npos) << status;

  JobSpec no_files = TrainJob();
  no_files.job.mutable_model()->set_embedding_dim(4);
  Trainer missing(no_files, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  status = missing.Run(&reports);
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find(dir + "/train.tsv"), std::string::npos) << status;
  EXPECT_TRUE(reports.empty());

  JobSpec good = TrainJob();
  good.job.mutable_model()->set_embedding_dim(4);
  trainer_options.threads = 0;
  Trainer no_threads(good, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  status = no_threads.Run(&reports);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("threads must be >= 1"), std::string::npos) << status;

  trainer_options.threads = 1;
  trainer_options.max_staleness = -2;
  Trainer negative_staleness(good, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  WriteSyntheticClicks(dir);
  status = negative_staleness.Run(&reports);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("max_staleness must be >= 0, not -2"), std::string::npos)
      << status;
  trainer_options.max_staleness.reset();

  // A label outside its task's domain (MULTICLASS 9 of 2 classes, BINARY 7) is a bad line of
  // the reader: a few cost nothing, the job completes.
  WriteSyntheticClicks(dir);
  {
    std::ofstream train(dir + "/train.tsv", std::ios::app);
    train << "9\t0.5\t1\t1\t\n7\t0.5\t1\t1\t\n";
  }
  JobSpec poisoned = good;
  poisoned.job.mutable_training()->set_epochs(1);
  proto::TaskConfig* click_class = poisoned.job.mutable_model()->add_tasks();
  click_class->set_name("click_class");
  click_class->set_head(proto::TaskConfig::MULTICLASS);
  click_class->set_label_column("click");
  click_class->set_num_classes(2);
  click_class->set_loss_weight(1);
  Trainer tolerant(poisoned, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  status = tolerant.Run(&reports);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(reports.size(), 1u);
  reports.clear();

  // A label column that is no class id at all makes every line bad: the bad-line budget stops
  // the reader in whichever thread meets it; every thread stops and Run names the task.
  WriteSyntheticClicks(dir);
  JobSpec bad_label = good;
  proto::TaskConfig* classes = bad_label.job.mutable_model()->add_tasks();
  classes->set_name("classes");
  classes->set_head(proto::TaskConfig::MULTICLASS);
  classes->set_label_column("score");
  classes->set_num_classes(2);
  classes->set_loss_weight(1);
  trainer_options.threads = 2;
  Trainer bad(bad_label, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  status = bad.Run(&reports);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find("task 'classes'"), std::string::npos) << status;
  EXPECT_TRUE(reports.empty());

  cluster.Stop();

  // The same in bulk-synchronous mode: the failing thread releases the clock, no thread waits.
  // On a cluster of its own: the first epoch's queue above was opened dealing chunks
  // dynamically, and a BSP worker refuses to share it.
  InProcessCluster bsp_cluster(options);
  ASSERT_TRUE(bsp_cluster.Start().ok());
  trainer_options.max_staleness = 0;
  Trainer bad_bsp(bad_label, &bsp_cluster.worker(0), &bsp_cluster.worker_client(0),
                  trainer_options);
  status = bad_bsp.Run(&reports);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find("task 'classes'"), std::string::npos) << status;
  EXPECT_TRUE(reports.empty());
  bsp_cluster.Stop();
}

// A worker that cannot read its input (here an eval file that is a FIFO nobody writes, as a
// file on a hung network mount) fails its job naming the file after the dataset's
// read_timeout_seconds, instead of hanging.
TEST(TrainTest, AnInputThatStopsDeliveringFailsTheJobNamingTheFile) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/train_test_stuck-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  WriteSyntheticClicks(dir);
  const std::string eval = dir + "/eval.tsv";
  std::string header;
  {
    std::ifstream in(eval);
    std::getline(in, header);
  }
  std::filesystem::remove(eval);
  ASSERT_EQ(mkfifo(eval.c_str(), 0600), 0);
  // The test holds the write end (so the reader's open does not block) and writes only the
  // header: the reader then blocks in read().
  const int fd = open(eval.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  header += "\n";
  ASSERT_EQ(write(fd, header.data(), header.size()), static_cast<ssize_t>(header.size()));

  InProcessClusterOptions options;
  options.num_servers = 1;
  options.num_workers = 1;
  options.config = SyntheticClicksClusterConfig();
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  JobSpec spec = TrainJob();
  spec.job.mutable_training()->set_epochs(1);
  spec.dataset.set_read_timeout_seconds(3);
  *spec.job.mutable_dataset() = spec.dataset;
  TrainerOptions trainer_options;
  trainer_options.data_dir = dir;
  trainer_options.output_dir = dir;
  Trainer trainer(spec, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  std::vector<EpochReport> reports;
  const absl::Time start = absl::Now();
  absl::Status status = trainer.Run(&reports);
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_NE(status.message().find(eval + ":1: no batch within read_timeout_seconds 3"),
            std::string::npos)
      << status;
  EXPECT_TRUE(reports.empty());
  cluster.Stop();
  close(fd);  // the abandoned prefetch thread's read returns; it ends
}

}  // namespace
}  // namespace granary
