// Recovery from kill -9 (DESIGN.md "Durability and recovery"): launch/local.sh --restarts
// supervises a training run with consistent checkpoints; the test kills a random server and a
// random worker, or the scheduler (SIGKILL, by pid, only processes its own launcher started) once
// the first checkpoint exists. The run must complete, train every chunk exactly once after the
// checkpoint it rolled back to, and end with the AUC of the same run without faults: the runs
// are bulk-synchronous, which is deterministic (docs/operations.md "Consistency"), and roll
// back to a checkpoint taken at an epoch's end. Losing only a worker rolls nothing back: its
// chunk resumes on the other worker at its first unacknowledged batch (no --restarts).
//
// A killed worker alone is replaced without a roll-back: local.sh restarts it, and the new
// process joins the running job in the dead one's rank (docs/operations.md "Replacing a
// worker").
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/synthetic_clicks.h"

namespace granary {
namespace {

const std::string kSource = GRANARY_SOURCE_DIR;
const std::string kBin = GRANARY_BINARY_DIR;

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/recovery_test-", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    WriteSyntheticClicks(dir_);
    std::ofstream(dir_ + "/dataset.pbtxt") << kSyntheticClicksDataset;
    std::ofstream(dir_ + "/job.pbtxt") << "dataset_config: \"dataset.pbtxt\"\n"
                                       << kSyntheticClicksJob;
    std::string cluster;
    ASSERT_TRUE(
        google::protobuf::TextFormat::PrintToString(SyntheticClicksClusterConfig(), &cluster));
    std::ofstream(dir_ + "/cluster.pbtxt") << cluster;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts a supervised run named `name` (run folder, checkpoints and output under dir_).
  absl::StatusOr<ChildProcess> StartRun(const std::string& name) {
    const std::string run = absl::StrCat(dir_, "/", name);
    return ChildProcess::Start(
        {kSource + "/launch/local.sh", "--servers", "2", "--workers", "2", "--config",
         dir_ + "/cluster.pbtxt", "--job", "train", "--bin_dir", kBin, "--run_dir", run,
         "--timeout", "240", "--restarts", "2", "--scheduler_flags",
         absl::StrCat("--checkpoint_dir=", run, "-checkpoints --heartbeat_timeout=4"),
         // Bulk-synchronous, so that the two runs differ by nothing but the crash: the result
         // equals a run without it "up to asynchrony" (DESIGN.md), and BSP has none.
         "--worker_flags",
         absl::StrCat("--job_config=", dir_, "/job.pbtxt --data_dir=", dir_, " --output_dir=", run,
                      "-out --max_staleness=0")},
        absl::StrCat(dir_, "/", name, ".launcher.log"));
  }

  // The click AUC of the last line of a run's metrics file.
  double FinalClickAuc(const std::string& name) {
    std::ifstream metrics(absl::StrCat(dir_, "/", name, "-out/out/metrics.jsonl"));
    std::string line, last;
    while (std::getline(metrics, line)) last = line;
    std::smatch match;
    const std::regex auc(R"("click": \{"count": [0-9]+, "auc": ([0-9.]+))");
    EXPECT_TRUE(std::regex_search(last, match, auc)) << last;
    return match.empty() ? -1 : std::stod(match[1]);
  }

  void RunWithKills(const std::vector<std::string>& victims);

  std::string dir_;
};

// Runs "clean" (no faults) and "faulty" (killing `victims` of the first attempt once the first
// checkpoint exists) at the same time, and checks what the file comment promises. At once, since
// neither changes what the other computes, and the test then takes about the time of one run.
void RecoveryTest::RunWithKills(const std::vector<std::string>& victims) {
  constexpr absl::Duration kRunTimeout = absl::Seconds(300);
  // Printed with 6 decimals. Bit-identical runs give 0; any nondeterminism left in BSP training
  // grows to gaps of several thousandths over the 12 epochs (0.011 before BSP was made
  // deterministic), so the bound catches it.
  constexpr double kMaxAucGap = 0.001;
  absl::StatusOr<ChildProcess> clean = StartRun("clean");
  ASSERT_TRUE(clean.ok()) << clean.status();

  absl::StatusOr<ChildProcess> faulty = StartRun("faulty");
  ASSERT_TRUE(faulty.ok()) << faulty.status();
  // Mid-run: once the first checkpoint exists, with epochs still to train.
  const std::string first_manifest = dir_ + "/faulty-checkpoints/ckpt-000001/MANIFEST";
  ASSERT_TRUE(
      WaitUntil([&] { return std::filesystem::exists(first_manifest); }, absl::Seconds(120)))
      << faulty->ReadLog();
  // The launcher lists the processes of the first attempt, "name pid" per line.
  std::map<std::string, pid_t> pids;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(dir_ + "/faulty/attempt-1/pids"), '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    ASSERT_GE(fields.size(), 2u) << line;
    pids[fields[0]] = std::stoi(fields[1]);
  }
  for (const std::string& victim : victims) {
    ASSERT_TRUE(pids.count(victim)) << victim;
    ASSERT_EQ(kill(pids[victim], SIGKILL), 0) << victim;
  }

  ASSERT_EQ(faulty->WaitForExit(kRunTimeout), 0) << faulty->ReadLog();
  ASSERT_EQ(clean->WaitForExit(kRunTimeout), 0) << clean->ReadLog();
  const double clean_auc = FinalClickAuc("clean");
  const std::string launcher = faulty->ReadLog();
  EXPECT_NE(launcher.find("attempt 1 failed"), std::string::npos) << launcher;

  // The last attempt rolled back to a checkpoint and trained every chunk it had not finished
  // exactly once: per queue, "N chunks, K already finished" when opened, then N - K distinct
  // "chunk C of queue 'Q': S samples trained" lines.
  int last_attempt = 1;
  while (std::filesystem::exists(absl::StrCat(dir_, "/faulty/attempt-", last_attempt + 1))) {
    ++last_attempt;
  }
  ASSERT_GE(last_attempt, 2);
  const std::string scheduler_log =
      ReadFile(absl::StrCat(dir_, "/faulty/attempt-", last_attempt, "/scheduler.log"));
  EXPECT_NE(scheduler_log.find("rolling back to checkpoint"), std::string::npos);
  const std::regex opened(
      R"(work queue '([^']+)' opened by [^:]*: ([0-9]+) chunks, ([0-9]+) already finished)");
  const std::regex finished(R"(chunk ([0-9]+) of queue '([^']+)': [0-9]+ samples trained \(by)");
  std::map<std::string, std::pair<int, int>> queues;  // chunks, already finished
  std::map<std::string, std::multiset<int>> trained;
  for (std::sregex_iterator it(scheduler_log.begin(), scheduler_log.end(), opened), end; it != end;
       ++it) {
    queues[(*it)[1]] = {std::stoi((*it)[2]), std::stoi((*it)[3])};
  }
  for (std::sregex_iterator it(scheduler_log.begin(), scheduler_log.end(), finished), end;
       it != end; ++it) {
    trained[(*it)[2]].insert(std::stoi((*it)[1]));
  }
  ASSERT_EQ(queues.size(), 12u);  // one per epoch
  int restored = 0;
  for (const auto& [queue, counts] : queues) {
    const std::multiset<int>& chunks = trained[queue];
    EXPECT_EQ(static_cast<int>(chunks.size()), counts.first - counts.second) << queue;
    EXPECT_EQ(std::set<int>(chunks.begin(), chunks.end()).size(), chunks.size())
        << queue << ": a chunk was trained twice";
    restored += counts.second;
  }
  EXPECT_GT(restored, 0) << "the last attempt restored no finished chunk";

  const double faulty_auc = FinalClickAuc("faulty");
  std::cout << "killed " << absl::StrJoin(victims, " and ") << "; " << last_attempt
            << " attempts; the last restored " << restored << " finished chunks; click AUC "
            << faulty_auc << " (without faults " << clean_auc << ", gap " << faulty_auc - clean_auc
            << ")\n";
  EXPECT_GE(clean_auc, 0.75);
  EXPECT_NEAR(faulty_auc, clean_auc, kMaxAucGap);
}

// local.sh --restarts 1 restarts a worker killed mid-epoch alone; the replacement joins the
// running job (no new attempt, no roll-back), trains chunks of the epochs not over, and every
// chunk of every epoch is finished exactly once.
TEST_F(RecoveryTest, KilledWorkerIsReplacedAloneAndTheJobGoesOnWithoutARollBack) {
  constexpr int kEpochs = 4;
  constexpr absl::Duration kRunTimeout = absl::Seconds(120);
  // Without eval files: a run that merges evaluations needs every worker's predictions.
  std::string job = ReadFile(dir_ + "/job.pbtxt");
  job = std::regex_replace(job, std::regex("epochs: 12"), absl::StrCat("epochs: ", kEpochs));
  job = std::regex_replace(job, std::regex("eval_files: \"eval.tsv\""), "");
  std::ofstream(dir_ + "/job-no-eval.pbtxt") << job;
  const std::string run = dir_ + "/replaced";
  const std::string fast_heartbeats = "--heartbeat_interval=0.2";
  absl::StatusOr<ChildProcess> launcher = ChildProcess::Start(
      {kSource + "/launch/local.sh",
       "--servers",
       "1",
       "--workers",
       "2",
       "--config",
       dir_ + "/cluster.pbtxt",
       "--job",
       "train",
       "--bin_dir",
       kBin,
       "--run_dir",
       run,
       "--timeout",
       "110",
       "--restarts",
       "1",
       "--scheduler_flags",
       "--heartbeat_timeout=1.5",
       "--server_flags",
       fast_heartbeats,
       "--worker_flags",
       absl::StrCat(fast_heartbeats, " --job_config=", dir_, "/job-no-eval.pbtxt --data_dir=", dir_,
                    " --output_dir=", run, "-out --max_staleness=2")},
      run + ".launcher.log");
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  // Mid-epoch: once worker-1 finished its first chunk of the first epoch.
  const std::string attempt = run + "/attempt-1";
  pid_t victim = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (absl::string_view line :
             absl::StrSplit(ReadFile(attempt + "/pids"), '\n', absl::SkipEmpty())) {
          std::vector<std::string> fields = absl::StrSplit(line, ' ');
          if (fields.size() >= 2 && fields[0] == "worker-1") victim = std::stoi(fields[1]);
        }
        return victim > 0 && std::regex_search(ReadFile(attempt + "/scheduler.log"),
                                               std::regex(absl::StrCat(
                                                   "chunk [0-9]+ of queue 'train-epoch-1': [0-9]+ "
                                                   "samples trained \\(by worker [0-9]+ "
                                                   "\\(pid ",
                                                   victim, "\\)")));
      },
      absl::Seconds(60)))
      << launcher->ReadLog();
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  ASSERT_EQ(launcher->WaitForExit(kRunTimeout), 0) << launcher->ReadLog();

  const std::string log = launcher->ReadLog();
  EXPECT_NE(log.find("restarted worker-1 alone as worker-1.restart-1"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(run + "/attempt-2")) << log;
  const std::string scheduler_log = ReadFile(attempt + "/scheduler.log");
  EXPECT_EQ(scheduler_log.find("rolling back"), std::string::npos);
  std::smatch joined;
  ASSERT_TRUE(std::regex_search(
      scheduler_log, joined,
      std::regex(
          R"(replacement (worker [0-9]+ \(pid ([0-9]+)\)) joined the running cluster \(incarnation ([0-9]+))")))
      << scheduler_log;
  const std::string replacement = joined[1];
  EXPECT_GT(std::stoi(joined[3]), 3) << "incarnations 1..3 went to the cluster's formation";
  // Every chunk of every epoch finished exactly once; the replacement finished some.
  const std::regex opened(R"(work queue '([^']+)' opened by [^:]*: ([0-9]+) chunks)");
  const std::regex finished(
      R"(chunk ([0-9]+) of queue '([^']+)': [0-9]+ samples trained \(by (worker [0-9]+ \(pid [0-9]+\)))");
  std::map<std::string, int> sizes;
  std::map<std::string, std::multiset<int>> trained;
  int by_replacement = 0;
  for (std::sregex_iterator it(scheduler_log.begin(), scheduler_log.end(), opened), end; it != end;
       ++it) {
    sizes[(*it)[1]] = std::stoi((*it)[2]);
  }
  for (std::sregex_iterator it(scheduler_log.begin(), scheduler_log.end(), finished), end;
       it != end; ++it) {
    trained[(*it)[2]].insert(std::stoi((*it)[1]));
    if ((*it)[3] == replacement) ++by_replacement;
  }
  ASSERT_EQ(sizes.size(), static_cast<size_t>(kEpochs));
  for (const auto& [queue, size] : sizes) {
    const std::multiset<int>& chunks = trained[queue];
    EXPECT_EQ(static_cast<int>(chunks.size()), size) << queue;
    EXPECT_EQ(std::set<int>(chunks.begin(), chunks.end()).size(), chunks.size())
        << queue << ": a chunk was trained twice";
  }
  EXPECT_GT(by_replacement, 0) << scheduler_log;
  // The replacement started at the epoch the job was in, and trained none before it.
  const std::string replacement_log = ReadFile(attempt + "/worker-1.restart-1.log");
  std::smatch at;
  ASSERT_TRUE(std::regex_search(replacement_log, at,
                                std::regex(R"(joined the running job at epoch ([0-9]+))")))
      << replacement_log;
  const int first_epoch = std::stoi(at[1]);
  EXPECT_LE(first_epoch, kEpochs);
  const std::regex epoch_trained(R"(worker [0-9]+ epoch ([0-9]+) trained:)");
  int epochs_trained = 0;
  for (std::sregex_iterator it(replacement_log.begin(), replacement_log.end(), epoch_trained), end;
       it != end; ++it) {
    EXPECT_GE(std::stoi((*it)[1]), first_epoch);
    ++epochs_trained;
  }
  EXPECT_EQ(epochs_trained, kEpochs - first_epoch + 1) << replacement_log;
  std::cout << "worker-1 (pid " << victim << ") killed; " << replacement << " joined at epoch "
            << first_epoch << " and finished " << by_replacement << " chunks\n";
}

TEST_F(RecoveryTest, KilledServerAndWorkerRollBackAndTheRunFinishesAsWithoutFaults) {
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  RunWithKills({absl::StrCat("server-", rng() % 2), absl::StrCat("worker-", rng() % 2)});
}

// The scheduler restarts from its own manifest.
TEST_F(RecoveryTest, KilledSchedulerRollsBackAndTheRunFinishesAsWithoutFaults) {
  RunWithKills({"scheduler"});
}

// Losing a worker costs no roll-back (docs/operations.md "What a worker's loss costs"): kill -9
// of one of two workers (two compute threads each) right after it finished a chunk of the first
// epoch, so that it dies holding the next one. The survivor finishes the job; by the
// scheduler's records every epoch trained each of its lines once, the killed worker's chunk
// resumed where its acknowledged batches ended, and the batches it had in flight are counted.
TEST_F(RecoveryTest, KilledWorkersChunkResumesOnTheOtherAndEveryLineIsTrainedOnce) {
  constexpr int kThreads = 2;
  constexpr int kEpochs = 3;
  // No evaluation (merging the dead worker's predictions is not this test's business).
  std::string job = kSyntheticClicksJob;
  job.replace(job.find("epochs: 12"), std::string("epochs: 12").size(),
              absl::StrCat("epochs: ", kEpochs));
  job.erase(job.find("  eval_files: \"eval.tsv\"\n"),
            std::string("  eval_files: \"eval.tsv\"\n").size());
  std::ofstream(dir_ + "/job-no-eval.pbtxt") << "dataset_config: \"dataset.pbtxt\"\n" << job;
  const std::string run = dir_ + "/lost-worker";
  absl::StatusOr<ChildProcess> launcher = ChildProcess::Start(
      {kSource + "/launch/local.sh", "--servers", "1", "--workers", "2", "--config",
       dir_ + "/cluster.pbtxt", "--job", "train", "--bin_dir", kBin, "--run_dir", run, "--timeout",
       "240", "--scheduler_flags", "--heartbeat_timeout=2", "--worker_flags",
       absl::StrCat("--job_config=", dir_, "/job-no-eval.pbtxt --data_dir=", dir_,
                    " --output_dir=", run, "-out --threads=", kThreads)},
      dir_ + "/lost-worker.launcher.log");
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  // The first chunk of epoch 1 a worker finished, and that worker's pid.
  const std::regex first_finished(
      R"(chunk [0-9]+ of queue 'train-epoch-1': [0-9]+ samples trained \(by worker [0-9]+ \(pid ([0-9]+)\))");
  pid_t victim = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const std::string log = ReadFile(run + "/scheduler.log");
        std::smatch match;
        if (!std::regex_search(log, match, first_finished)) return false;
        victim = std::stoi(match[1]);
        return true;
      },
      absl::Seconds(120)))
      << launcher->ReadLog();
  // Only a process this test's launcher started.
  bool ours = false;
  for (absl::string_view line : absl::StrSplit(ReadFile(run + "/pids"), '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    ours = ours || (fields.size() >= 2 && absl::StartsWith(fields[0], "worker-") &&
                    std::stoi(fields[1]) == victim);
  }
  ASSERT_TRUE(ours) << "pid " << victim << " is not a worker of " << run << "/pids";
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  // The run finishes without it, and local.sh (no --restarts) says so and exits 0.
  ASSERT_EQ(launcher->WaitForExit(absl::Seconds(240)), 0) << launcher->ReadLog();
  EXPECT_NE(launcher->ReadLog().find("the job finished without it"), std::string::npos)
      << launcher->ReadLog();

  const std::string log = ReadFile(run + "/scheduler.log");
  EXPECT_NE(log.find("shutting down the cluster: all workers finished their jobs"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("died before it finished its job; the job goes on with"), std::string::npos);
  const std::regex totals(
      R"(work queue '(train-epoch-[0-9]+)': all [0-9]+ chunks finished; ([0-9]+) samples trained, ([0-9]+) chunks requeued, ([0-9]+) batches partially applied)");
  int queues = 0, requeued = 0, partial = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), totals), end; it != end; ++it) {
    ++queues;
    EXPECT_EQ(std::stoi((*it)[2]), kUsers * kTrainEventsPerUser) << (*it)[1];
    requeued += std::stoi((*it)[3]);
    partial += std::stoi((*it)[4]);
  }
  EXPECT_EQ(queues, kEpochs);
  EXPECT_GE(requeued, 1) << "the killed worker held no chunk";
  // Per requeued chunk, at most the batches its pipelines held: kPipelineBatchesTaken (3) per
  // compute thread (worker/train/batch_pipeline.h).
  EXPECT_LE(partial, requeued * 3 * kThreads);
  EXPECT_TRUE(
      std::regex_search(log, std::regex(R"(resumed at line [0-9]+ after worker [0-9]+ died)")))
      << log;
  std::cout << "killed worker pid " << victim << "; " << requeued << " chunks requeued, " << partial
            << " batches partially applied\n";
}

}  // namespace
}  // namespace granary
