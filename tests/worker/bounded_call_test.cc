#include "worker/bounded_call.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

constexpr absl::Duration kGenerousBound = absl::Seconds(10);

TEST(BoundedCallTest, ReturnsWhatTheCallReturned) {
  EXPECT_TRUE(CallWithDeadline([] { return absl::OkStatus(); }, kGenerousBound, "late").ok());
  const absl::Status status = CallWithDeadline(
      [] { return absl::NotFoundError("x: no such input file"); }, kGenerousBound, "late");
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_EQ(status.message(), "x: no such input file");
}

// open() of a FIFO no one writes blocks in the kernel, as a stat on a hung mount does: the
// caller gets its error at the deadline, and the call ends on its own state once it returns.
TEST(BoundedCallTest, ACallThatDoesNotReturnTimesOutAndEndsLater) {
  const std::string dir = MakeTempDir("bounded-call-test");
  ASSERT_FALSE(dir.empty());
  const std::string fifo = dir + "/never-written";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto returned = std::make_shared<std::atomic<bool>>(false);
  const absl::Time start = absl::Now();
  const absl::Status status = CallWithDeadline(
      [fifo, returned] {
        const int fd = open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) close(fd);
        returned->store(true);
        return absl::OkStatus();
      },
      absl::Milliseconds(200), "input " + fifo + " did not open within 0.2 s");
  const absl::Duration waited = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_EQ(status.message(), "input " + fifo + " did not open within 0.2 s");
  EXPECT_GE(waited, absl::Milliseconds(190));
  EXPECT_LT(waited, absl::Seconds(2));
  EXPECT_FALSE(returned->load());

  // A writer lets the open return: the abandoned call then finishes by itself.
  const int writer = open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  EXPECT_TRUE(WaitUntil([&] { return returned->load(); }, kGenerousBound));
  close(writer);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace granary
