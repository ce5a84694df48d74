#include "tests/testing/child_process.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

constexpr absl::Duration kStartBound = absl::Seconds(10);
// Beyond the destructor's own bounds: time for the kernel to tear a killed process down.
constexpr absl::Duration kSlack = absl::Seconds(2);

// Alive: it exists and is not a zombie (an orphan is reaped by init, or not, in a container).
bool Alive(pid_t pid) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t comm_end = stat.rfind(')');
  return comm_end != std::string::npos && comm_end + 2 < stat.size() && stat[comm_end + 2] != 'Z' &&
         stat[comm_end + 2] != 'X';
}

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("child-process-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts `script` under /bin/sh with its log in the test's folder.
  std::unique_ptr<ChildProcess> StartShell(const std::string& script) {
    absl::StatusOr<ChildProcess> child =
        ChildProcess::Start({"/bin/sh", "-c", script}, dir_ + "/child.log");
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::make_unique<ChildProcess>(*std::move(child)) : nullptr;
  }

  // The pid the child's script wrote to `file` (0 if none within kStartBound).
  pid_t ReadPid(const std::string& file) {
    pid_t pid = 0;
    WaitUntil(
        [&] {
          return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(file)), &pid) && pid > 0;
        },
        kStartBound);
    return pid;
  }

  std::string dir_;
};

// A launch script's servers are its children: the test's teardown must stop them too.
TEST_F(ChildProcessTest, TeardownStopsTheChildsOwnChildren) {
  const std::string pid_file = dir_ + "/grandchild.pid";
  std::unique_ptr<ChildProcess> child =
      StartShell(absl::StrCat("sleep 1000 & echo $! > ", pid_file, "; wait"));
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(getpgid(child->pid()), child->pid());  // a group of its own
  const pid_t grandchild = ReadPid(pid_file);
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(Alive(grandchild));
  EXPECT_EQ(getpgid(grandchild), child->pid());

  const absl::Time start = absl::Now();
  child.reset();
  // sh and sleep die of SIGTERM at once: no SIGKILL was needed.
  EXPECT_LT(absl::Now() - start, kChildTerminateGrace);
  EXPECT_TRUE(WaitUntil([&] { return !Alive(grandchild); }, kSlack)) << grandchild;
}

// A child that ignores SIGTERM (and passes that on) is killed once the grace is over.
TEST_F(ChildProcessTest, TeardownKillsAGroupThatIgnoresTermWithinItsBound) {
  const std::string pid_file = dir_ + "/grandchild.pid";
  std::unique_ptr<ChildProcess> child =
      StartShell(absl::StrCat("trap '' TERM; sleep 1000 & echo $! > ", pid_file, "; wait"));
  ASSERT_NE(child, nullptr);
  const pid_t grandchild = ReadPid(pid_file);
  ASSERT_GT(grandchild, 0);
  const absl::Time start = absl::Now();
  child.reset();
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, kChildTerminateGrace);
  EXPECT_LT(took, kChildTerminateGrace + kChildKillWait);
  EXPECT_TRUE(WaitUntil([&] { return !Alive(grandchild); }, kSlack)) << grandchild;
}

// The child exited but left a child of its own running: teardown stops that one too.
TEST_F(ChildProcessTest, TeardownStopsAnOrphanAfterTheChildExited) {
  const std::string pid_file = dir_ + "/grandchild.pid";
  std::unique_ptr<ChildProcess> child =
      StartShell(absl::StrCat("sleep 1000 & echo $! > ", pid_file, "; exit 7"));
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->WaitForExit(kStartBound), 7);
  const pid_t grandchild = ReadPid(pid_file);
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(Alive(grandchild));
  child.reset();
  EXPECT_TRUE(WaitUntil([&] { return !Alive(grandchild); }, kSlack)) << grandchild;
}

// Temp folders of the child (a killed server's ipc folder) land in the test's folder.
TEST_F(ChildProcessTest, ChildsTempDirIsTheFolderOfItsLog) {
  std::unique_ptr<ChildProcess> child = StartShell("echo \"TMPDIR=$TMPDIR\"");
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->WaitForExit(kStartBound), 0);
  EXPECT_EQ(child->ReadLog(), absl::StrCat("TMPDIR=", dir_, "\n"));
}

TEST_F(ChildProcessTest, ExitCodeOfASignalIs128PlusIt) {
  std::unique_ptr<ChildProcess> child = StartShell("sleep 1000");
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->WaitForExit(absl::Milliseconds(100)), std::nullopt);
  child->Signal(SIGKILL);
  EXPECT_EQ(child->WaitForExit(kStartBound), 128 + SIGKILL);
  EXPECT_EQ(child->WaitForExit(absl::ZeroDuration()), 128 + SIGKILL);  // the same, again
}

}  // namespace
}  // namespace granary
