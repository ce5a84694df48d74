#include "scheduler/file_worker.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

// Polls `files` until `want` callbacks ran or 10 s passed; returns how many ran.
int RunFinishedUntil(FileWorker& files, int want) {
  int ran = 0;
  for (int i = 0; i < 1000 && ran < want; ++i) {
    ran += files.RunFinished();
    if (ran < want) absl::SleepFor(absl::Milliseconds(10));
  }
  return ran;
}

TEST(FileWorkerTest, RunsWorkInOrderOffTheCallerAndDoneOnIt) {
  FileWorker files;
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<int> order;  // written by the work, one item at a time
  std::vector<absl::Status> outcomes;
  std::atomic<bool> off_the_caller{true};
  for (int i = 0; i < 3; ++i) {
    files.Post(
        "item",
        [&, i] {
          if (std::this_thread::get_id() == caller) off_the_caller = false;
          order.push_back(i);
          return i == 1 ? absl::UnavailableError("disk gone") : absl::OkStatus();
        },
        [&](const absl::Status& status) {
          EXPECT_EQ(std::this_thread::get_id(), caller);
          outcomes.push_back(status);
        });
  }
  ASSERT_EQ(RunFinishedUntil(files, 3), 3);
  EXPECT_FALSE(files.busy());
  EXPECT_TRUE(off_the_caller);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[0].ok());
  EXPECT_TRUE(absl::IsUnavailable(outcomes[1]));
  EXPECT_TRUE(outcomes[2].ok());
  EXPECT_TRUE(files.Stop(absl::Seconds(10)));
}

TEST(FileWorkerTest, PostNeverWaitsForWorkUnderWay) {
  FileWorker files;
  std::atomic<bool> release{false};
  files.Post(
      "slow",
      [&] {
        while (!release) absl::SleepFor(absl::Milliseconds(5));
        return absl::OkStatus();
      },
      nullptr);
  const absl::Time start = absl::Now();
  files.Post(
      "next", [] { return absl::OkStatus(); }, nullptr);
  EXPECT_EQ(files.RunFinished(), 0);
  EXPECT_TRUE(files.busy());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  release = true;
  EXPECT_TRUE(files.Stop(absl::Seconds(10)));  // waits for both
  EXPECT_FALSE(files.busy());
}

TEST(FileWorkerTest, StopGivesUpAfterItsDeadlineAndDropsTheRest) {
  auto files = std::make_unique<FileWorker>();
  auto ran_second = std::make_shared<std::atomic<bool>>(false);
  files->Post(
      "stuck",
      [] {
        absl::SleepFor(absl::Seconds(2));
        return absl::OkStatus();
      },
      nullptr);
  files->Post(
      "queued",
      [ran_second] {
        *ran_second = true;
        return absl::OkStatus();
      },
      nullptr);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(files->Stop(absl::Milliseconds(200)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  files.reset();  // the thread finishes "stuck" alone
  absl::SleepFor(absl::Seconds(3));
  EXPECT_FALSE(*ran_second);
}

}  // namespace
}  // namespace granary
