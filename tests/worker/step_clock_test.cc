#include "worker/step_clock.h"

#include <memory>
#include <thread>

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

}  // namespace
}  // namespace granary
