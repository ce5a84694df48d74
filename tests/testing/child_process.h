// ChildProcess: a process a test started, with its output in a log file. The destructor
// kills it (SIGKILL, by pid) if it is still running, so a failing test never leaves
// processes behind and never touches processes it did not start.
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

// The whole text of the file at `path` (a log, a report a process wrote); empty if it cannot
// be read.
std::string ReadFile(const std::string& path);

class ChildProcess {
 public:
  // Starts `argv` (argv[0] is a path) with stdout and stderr appended to `log_path`.
  static absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv,
                                            const std::string& log_path);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Waits up to `timeout` for the process to exit; returns its exit code (128 + signal if
  // killed), or nullopt if it is still running.
  std::optional<int> WaitForExit(absl::Duration timeout);

  // Sends `signal` to this process (only if it has not been reaped yet).
  void Signal(int signal);

  // The whole log so far.
  std::string ReadLog() const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

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
