// ChildProcess: a process a test started, with its output in a log file.
//
// Each child leads a process group of its own (setpgid at spawn), so that what it starts in
// turn (a launch script's servers and workers) belongs to the group too. The destructor stops
// the whole group: SIGTERM, up to kChildTerminateGrace for every member to exit, then SIGKILL,
// and up to kChildKillWait more; so a failing test never leaves processes behind, and never
// touches processes it did not start (only this group, by its id, which the unreaped child
// keeps from being reused).
//
// The child's TMPDIR is the folder of its log file, the test's own folder: temp folders a child
// or its descendants make there (a server's granary-ipc-XXXXXX socket folder, which a killed
// server leaves behind) go when the test removes its folder. Everything else of the test's
// environment is passed on unchanged.
//
// Thread-compatible.
#ifndef GRANARY_TESTS_TESTING_CHILD_PROCESS_H_
#define GRANARY_TESTS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace granary {

// How long the destructor gives the group to exit after SIGTERM before it sends SIGKILL: long
// enough for a server or a launch script to stop in order, short beside a test's timeout.
inline constexpr absl::Duration kChildTerminateGrace = absl::Seconds(3);
// How long the destructor waits for the group to go after SIGKILL (a process in an
// uninterruptible read may take a moment); past it, it logs what is left and returns.
inline constexpr absl::Duration kChildKillWait = absl::Seconds(5);

// The whole text of the file at `path` (a log, a report a process wrote); empty if it cannot
// be read.
std::string ReadFile(const std::string& path);

// The processes of process group `group` that are alive (zombies excluded), read from /proc.
std::vector<pid_t> LiveProcessesOfGroup(pid_t group);

class ChildProcess {
 public:
  // Starts `argv` (argv[0] is a path) in a new process group, with stdout and stderr appended
  // to `log_path` and TMPDIR set to the folder of `log_path`.
  static absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv,
                                            const std::string& log_path);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) = delete;
  ChildProcess(const ChildProcess&) = delete;
  // Stops the child's process group (see above) and reaps the child.
  ~ChildProcess();

  // The child's pid, which is also its process group's id.
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Waits up to `timeout` for the process to exit; returns its exit code (128 + signal if
  // killed), or nullopt if it is still running. Processes it started may still run.
  std::optional<int> WaitForExit(absl::Duration timeout);

  // Sends `signal` to this process alone (only if it has not exited yet).
  void Signal(int signal);

  // The whole log so far.
  std::string ReadLog() const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  // Whether the child exited (it is then a zombie until the destructor reaps it); records its
  // exit code.
  bool Exited();

  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
template <typename Condition>
bool WaitUntil(Condition condition, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_CHILD_PROCESS_H_
