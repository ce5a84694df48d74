#include "worker/step_clock.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/testing/in_process_cluster.h"

namespace granary {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(20);

InProcessClusterOptions TwoWorkers() {
  InProcessClusterOptions options;
  options.num_servers = 1;
  options.num_workers = 2;
  options.config = SgdTablesConfig({{"t", 4}}, 0.1f);
  return options;
}

// Step t may start once every worker finished t - 1 - s steps: with s = 1, steps 1 and 2 start
// at once, step 3 waits for the other worker's first step.
TEST(StepClockTest, NumbersStepsAndGatesThemByTheSlowestWorker) {
  InProcessCluster cluster(TwoWorkers());
  const absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  {
    StepClock ahead(&cluster.worker_client(0), "c", /*max_staleness=*/1, kTimeout);
    StepClock behind(&cluster.worker_client(1), "c", /*max_staleness=*/1, kTimeout);
    EXPECT_EQ(ahead.Begin(), 1);
    EXPECT_EQ(ahead.Begin(), 2);
    EXPECT_EQ(ahead.Begin(), 3);
    EXPECT_TRUE(ahead.MayStart(1));
    EXPECT_TRUE(ahead.MayStart(2));
    ahead.Finished(2);
    EXPECT_FALSE(ahead.MayStart(3));  // the other worker finished no step
    behind.Finished(1);
    EXPECT_TRUE(ahead.WaitToStart(3).ok());
  }
  cluster.Stop();
}

// A worker's clock going away (out of input, or failed) reports it done: it holds nobody back.
TEST(StepClockTest, DestroyingAClockReleasesTheOthers) {
  InProcessCluster cluster(TwoWorkers());
  const absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  {
    StepClock waiting(&cluster.worker_client(0), "c", /*max_staleness=*/0, kTimeout);
    auto leaving =
        std::make_unique<StepClock>(&cluster.worker_client(1), "c", /*max_staleness=*/0, kTimeout);
    EXPECT_EQ(waiting.Begin(), 1);
    waiting.Finished(1);
    EXPECT_EQ(waiting.Begin(), 2);
    EXPECT_FALSE(waiting.MayStart(2));
    absl::Status status;
    std::thread waiter([&] { status = waiting.WaitToStart(2); });
    leaving.reset();
    waiter.join();
    EXPECT_TRUE(status.ok()) << status;
  }
  cluster.Stop();
}

// Bulk-synchronous steps are ordered inside: every worker pulls step t before anyone pushes
// it, and the pushes go in rank order; a worker that leaves holds nobody back. The workers
// sleep different, varying times, so that without the order the log would be shuffled.
TEST(StepClockTest, BulkSynchronousWorkersPullThenPushEachStepInRankOrder) {
  constexpr int kWorkers = 3;
  constexpr int64_t kSteps = 6;
  constexpr int64_t kStepsOfTheLeaver = 3;  // rank 0 leaves after this many
  InProcessClusterOptions options = TwoWorkers();
  options.num_workers = kWorkers;
  InProcessCluster cluster(options);
  const absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  absl::Mutex mutex;
  std::vector<std::string> events;  // "<step> pull|push <rank>", in the order they happened
  std::vector<absl::Status> statuses(kWorkers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      SchedulerClient& client = cluster.worker_client(w);
      const int rank = client.rank();
      StepClock clock(&client, "c", /*max_staleness=*/0, kTimeout);
      const int64_t steps = rank == 0 ? kStepsOfTheLeaver : kSteps;
      for (int64_t k = 1; k <= steps; ++k) {
        const int64_t step = clock.Begin();
        absl::Status status = clock.WaitToStart(step);
        if (!status.ok()) {
          statuses[w] = status;
          return;
        }
        // Later ranks pull later, earlier ranks compute longer.
        absl::SleepFor(absl::Milliseconds(2 * rank + (k % 2)));
        {
          absl::MutexLock lock(&mutex);
          events.push_back(absl::StrCat(step, " pull ", rank));
        }
        clock.Pulled(step);
        absl::SleepFor(absl::Milliseconds(3 * (kWorkers - rank)));
        status = clock.WaitToPush(step);
        if (!status.ok()) {
          statuses[w] = status;
          return;
        }
        {
          absl::MutexLock lock(&mutex);
          events.push_back(absl::StrCat(step, " push ", rank));
        }
        clock.Finished(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) ASSERT_TRUE(status.ok()) << status;
  // Each step: its pulls in any order, then its pushes in rank order.
  size_t at = 0;
  for (int64_t step = 1; step <= kSteps; ++step) {
    const int first = step <= kStepsOfTheLeaver ? 0 : 1;
    const size_t n = kWorkers - first;
    ASSERT_LE(at + 2 * n, events.size()) << "step " << step;
    std::vector<std::string> pulls(events.begin() + at, events.begin() + at + n);
    std::sort(pulls.begin(), pulls.end());
    const std::vector<std::string> pushes(events.begin() + at + n, events.begin() + at + 2 * n);
    std::vector<std::string> expected_pulls, expected_pushes;
    for (int rank = first; rank < kWorkers; ++rank) {
      expected_pulls.push_back(absl::StrCat(step, " pull ", rank));
      expected_pushes.push_back(absl::StrCat(step, " push ", rank));
    }
    EXPECT_EQ(pulls, expected_pulls) << "step " << step;
    EXPECT_EQ(pushes, expected_pushes) << "step " << step;
    at += 2 * n;
  }
  EXPECT_EQ(at, events.size());
  cluster.Stop();
}

}  // namespace
}  // namespace granary
