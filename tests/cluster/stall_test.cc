// A worker that stalls (DESIGN.md "Durability and recovery"; docs/operations.md "Losing a
// worker"): real granary_* processes on 127.0.0.1 (free ports, bounded waits, only their own
// pids signalled). One of two workers is stopped (SIGSTOP) for 12 s in the first epoch, longer
// than the scheduler's heartbeat timeout, then continued (SIGCONT). The scheduler declares it
// dead and fences it; the job goes on with the other worker, which trains the rest of the chunk
// it held from its resume point; the stalled worker, back, is refused by the server and the
// scheduler and exits naming why.
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/served_rows.h"
#include "tests/testing/synthetic_clicks.h"
#include "tests/testing/temp_dir.h"
#include "worker/job.h"
#include "worker/train/batch_pipeline.h"

namespace granary {
namespace {

const std::string kBin = GRANARY_BINARY_DIR;
constexpr absl::Duration kStartTimeout = absl::Seconds(30);
constexpr absl::Duration kRunTimeout = absl::Seconds(180);
// The stall of the issue: far longer than the heartbeat timeout.
constexpr absl::Duration kStall = absl::Seconds(12);
constexpr char kHeartbeatTimeout[] = "3";
// Training takes 20-40 s on a quiet machine, most of it after the stall ends.
constexpr int kEpochs = 20;
constexpr int kCopies = 5;
constexpr char kDay[] = "20261207";

// The samples of each chunk of `path` cut every `chunk_bytes` (worker/batch_source.h): the
// lines that start in its byte range, but the header.
std::vector<int> SamplesPerChunk(const std::string& path, uint64_t chunk_bytes) {
  const std::string text = ReadFile(path);
  std::vector<int> samples((text.size() + chunk_bytes - 1) / chunk_bytes, 0);
  for (size_t start = text.find('\n') + 1; start < text.size();
       start = text.find('\n', start) + 1) {
    ++samples[start / chunk_bytes];
  }
  return samples;
}

// Every match of `pattern`'s first group in `text`, as integers.
std::vector<int> AllMatches(const std::string& text, const std::string& pattern) {
  std::vector<int> found;
  const std::regex re(pattern);
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    found.push_back(std::stoi((*it)[1]));
  }
  return found;
}

class StallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("granary-stall");
    ASSERT_FALSE(dir_.empty());
    // kCopies times the data: enough training left after the death that the job is still
    // running when the stalled worker comes back (else nobody could tell it it was fenced).
    WriteSyntheticClicksRun(dir_, kCopies, kEpochs);
  }
  // Kept after a failure, for its logs.
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv,
                                      const std::string& name) {
    absl::StatusOr<ChildProcess> child =
        ChildProcess::Start(argv, absl::StrCat(dir_, "/", name, ".log"));
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::make_unique<ChildProcess>(*std::move(child)) : nullptr;
  }

  static std::optional<int> ExitOf(ChildProcess& child) { return child.WaitForExit(kRunTimeout); }

  std::string dir_;
};

TEST_F(StallTest, AWorkerStoppedForTwelveSecondsIsFencedAndTheJobFinishesWithoutIt) {
  const std::string cluster_id = absl::StrCat("stall-", getpid());
  const std::string address_file = dir_ + "/scheduler.addr";
  auto scheduler =
      Start({kBin + "/granary_scheduler", "--config=" + dir_ + "/cluster.pbtxt", "--port=0",
             "--address_file=" + address_file, "--cluster_id=" + cluster_id, "--insecure_no_auth",
             "--num_servers=1", "--num_workers=2",
             absl::StrCat("--heartbeat_timeout=", kHeartbeatTimeout), absl::StrCat("--day=", kDay),
             "--checkpoint_dir=" + dir_ + "/checkpoints", "--close_day_into=" + dir_ + "/model"},
            "scheduler");
  ASSERT_NE(scheduler, nullptr);
  std::string address;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream in(address_file);
        return static_cast<bool>(std::getline(in, address)) && !address.empty();
      },
      kStartTimeout))
      << scheduler->ReadLog();
  const std::vector<std::string> node = {"--scheduler=" + address, "--cluster_id=" + cluster_id,
                                         "--heartbeat_interval=0.2", "--insecure_no_auth"};
  std::vector<std::string> server_argv = {kBin + "/granary_server", "--data_dir=" + dir_ + "/data",
                                          "--stats_interval=1"};
  server_argv.insert(server_argv.end(), node.begin(), node.end());
  auto server = Start(server_argv, "server");
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (const char* name : {"worker-a", "worker-b"}) {
    std::vector<std::string> argv = {kBin + "/granary_worker", "--job=train",
                                     "--job_config=" + dir_ + "/job.pbtxt", "--data_dir=" + dir_,
                                     "--output_dir=" + dir_ + "/out"};
    argv.insert(argv.end(), node.begin(), node.end());
    workers.push_back(Start(argv, name));
    ASSERT_NE(workers.back(), nullptr);
  }
  ChildProcess& survivor = *workers[0];
  ChildProcess& stalled = *workers[1];
  // `match` points into `log`, so the log outlives the wait.
  std::string log;
  std::smatch match;
  const std::regex registered(R"(registered as worker ([0-9]+) \(pid ([0-9]+)\))");
  ASSERT_TRUE(WaitUntil(
      [&] {
        log = stalled.ReadLog();
        return std::regex_search(log, match, registered);
      },
      kStartTimeout))
      << stalled.ReadLog();
  const int stalled_rank = std::stoi(match[1]);
  const std::string stalled_name = absl::StrCat("worker ", stalled_rank, " (pid ", stalled.pid());
  const std::string stalled_pattern =
      absl::StrCat("worker ", stalled_rank, " \\(pid ", stalled.pid(), "\\)");

  // Stopped in the middle of the first epoch: once it finished a chunk of it.
  const std::string stalled_finished = absl::StrCat(
      "chunk [0-9]+ of queue 'train-epoch-1': [0-9]+ samples trained \\(by ", stalled_pattern);
  ASSERT_TRUE(WaitUntil(
      [&] { return std::regex_search(scheduler->ReadLog(), std::regex(stalled_finished)); },
      kStartTimeout))
      << scheduler->ReadLog();
  stalled.Signal(SIGSTOP);
  const absl::Time stopped = absl::Now();
  // Declared dead by the scheduler, and fenced by the server, while it is still stopped.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return scheduler->ReadLog().find(stalled_name + ") is dead: no heartbeat for") !=
               std::string::npos;
      },
      kStall))
      << scheduler->ReadLog();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return server->ReadLog().find(absl::StrCat("worker ", stalled_rank, " incarnation")) !=
               std::string::npos;
      },
      kStall))
      << server->ReadLog();
  absl::SleepFor(stopped + kStall - absl::Now());
  ASSERT_FALSE(scheduler->WaitForExit(absl::ZeroDuration()).has_value())
      << "the job ended during the stall: the test proves nothing\n"
      << scheduler->ReadLog();
  stalled.Signal(SIGCONT);

  // Back, it learns it was fenced and exits non-zero saying so; the others finish the job.
  const std::optional<int> stalled_exit = stalled.WaitForExit(absl::Seconds(30));
  ASSERT_TRUE(stalled_exit.has_value()) << "the fenced worker hangs:\n" << stalled.ReadLog();
  EXPECT_EQ(*stalled_exit, kFencedExitStatus);
  const std::string stalled_log = stalled.ReadLog();
  EXPECT_NE(stalled_log.find(absl::StrCat("worker ", stalled_rank,
                                          ": exits: fenced by the scheduler: fenced: worker ",
                                          stalled_rank)),
            std::string::npos)
      << stalled_log;
  EXPECT_NE(stalled_log.find("was declared dead by the scheduler (no heartbeat for"),
            std::string::npos)
      << stalled_log;
  EXPECT_EQ(ExitOf(survivor), 0) << survivor.ReadLog();
  EXPECT_EQ(ExitOf(*server), 0) << server->ReadLog();
  EXPECT_EQ(ExitOf(*scheduler), 0) << scheduler->ReadLog();
  const std::string scheduler_log = scheduler->ReadLog();
  EXPECT_NE(scheduler_log.find(absl::StrCat("day ", kDay, " closed")), std::string::npos);

  // What was trained, by the scheduler's records: every chunk of every epoch finished exactly
  // once, none of them by the stalled worker after its death, every line of every epoch trained
  // once, and only the chunks it held when it stopped handed out again, resumed where its
  // acknowledged batches ended.
  const std::vector<int> chunk_samples = SamplesPerChunk(dir_ + "/train.tsv", 8192);
  const int total = kCopies * kUsers * kTrainEventsPerUser;
  for (int epoch = 1; epoch <= kEpochs; ++epoch) {
    const std::string queue = absl::StrCat("'train-epoch-", epoch, "'");
    const std::vector<int> finished =
        AllMatches(scheduler_log, absl::StrCat("chunk ([0-9]+) of queue ", queue, ": "));
    EXPECT_EQ(std::multiset<int>(finished.begin(), finished.end()).size(), chunk_samples.size())
        << queue;
    EXPECT_EQ(std::set<int>(finished.begin(), finished.end()).size(), chunk_samples.size())
        << queue << ": a chunk was finished twice";
    const std::vector<int> samples_trained = AllMatches(
        scheduler_log,
        absl::StrCat("work queue ", queue, ": all [0-9]+ chunks finished; ([0-9]+) samples"));
    ASSERT_EQ(samples_trained.size(), 1u) << queue;
    EXPECT_EQ(samples_trained[0], total) << queue;
  }
  const std::vector<int> by_stalled =
      AllMatches(scheduler_log, absl::StrCat("chunk ([0-9]+) of queue 'train-epoch-1': [0-9]+ "
                                             "samples trained \\(by ",
                                             stalled_pattern));
  int stalled_samples = 0;
  for (int chunk : by_stalled) stalled_samples += chunk_samples[chunk];
  const std::vector<int> requeued = AllMatches(
      scheduler_log,
      absl::StrCat("'train-epoch-1': ([0-9]+) chunks of ", stalled_pattern, " handed out again"));
  // One compute thread holds one chunk at a time.
  EXPECT_LE(requeued.empty() ? 0 : requeued[0], 1) << scheduler_log;
  // The lines of its chunk before the first batch not acknowledged were trained by it, once.
  int resumed_lines = 0;
  for (int line : AllMatches(scheduler_log, absl::StrCat("queue 'train-epoch-1': [^\n]*resumed at "
                                                         "line ([0-9]+) after worker ",
                                                         stalled_rank, " died"))) {
    resumed_lines += line;
  }
  const std::vector<int> partial =
      AllMatches(scheduler_log,
                 "'train-epoch-1': all [0-9]+ chunks finished; [^\n]* ([0-9]+) batches "
                 "partially applied");
  ASSERT_EQ(partial.size(), 1u) << scheduler_log;
  // One compute thread (the default): at most the batches its pipeline holds.
  EXPECT_LE(partial[0], kPipelineBatchesTaken) << scheduler_log;

  // The survivor trained the rest of epoch 1, the requeued chunk from its resume point, and
  // every later epoch alone: nothing lost, nothing trained twice (the partial batches aside).
  const std::string survivor_log = survivor.ReadLog();
  const int survivor_rank = 1 - stalled_rank;
  const std::vector<int> survivor_samples = AllMatches(
      survivor_log, absl::StrCat("worker ", survivor_rank, " epoch [0-9]+ trained: ([0-9]+)"));
  ASSERT_EQ(survivor_samples.size(), static_cast<size_t>(kEpochs)) << survivor_log;
  EXPECT_EQ(survivor_samples[0] + stalled_samples + resumed_lines, total);
  for (int epoch = 2; epoch <= kEpochs; ++epoch) EXPECT_EQ(survivor_samples[epoch - 1], total);

  // The server fenced it before it came back; whatever it sent afterwards was refused.
  const std::string server_log = server->ReadLog();
  const std::vector<int> refused =
      AllMatches(server_log, "([0-9]+) requests of fenced workers refused since start");
  ASSERT_FALSE(refused.empty()) << server_log;
  // Each refusal names the worker and its incarnation.
  const std::vector<int> refusals =
      AllMatches(server_log, absl::StrCat("from worker ", stalled_rank,
                                          " at [^ ]+ \\(request [0-9]+\\): worker ", stalled_rank,
                                          " incarnation ([0-9]+) was declared dead by the "
                                          "scheduler \\(fenced\\)"));
  EXPECT_EQ(static_cast<int>(refusals.size()), refused.back()) << server_log;

  // Evaluation merged the survivor's predictions only, and says so.
  std::ifstream metrics(dir_ + "/out/out/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    EXPECT_NE(line.find(absl::StrCat("\"eval_workers\": [", survivor_rank, "]")), std::string::npos)
        << line;
  }
  EXPECT_EQ(lines, kEpochs);

  // The model holds no non-finite value: every row of the closed day's delta.
  for (const char* table : {"emb", "dense"}) {
    ServedRows rows;
    absl::StatusOr<int> files =
        ApplyDayDeltas(absl::StrCat(dir_, "/model/deltas/", kDay), table, &rows);
    ASSERT_TRUE(files.ok()) << files.status();
    EXPECT_FALSE(rows.empty()) << table;
    for (const auto& [key, values] : rows) {
      for (float value : values) ASSERT_TRUE(std::isfinite(value)) << table << " key " << key;
    }
  }
  std::cout << "stalled worker " << stalled_rank << " finished " << by_stalled.size()
            << " chunks of epoch 1 (" << stalled_samples << " samples) before the stop; "
            << (requeued.empty() ? 0 : requeued[0]) << " chunk handed out again; the server "
            << "refused " << refused.back() << " of its requests after the stall\n";
}

}  // namespace
}  // namespace granary
