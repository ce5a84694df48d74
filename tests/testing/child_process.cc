#include "tests/testing/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"

extern char** environ;

namespace granary {
namespace {

constexpr char kTempDirVariable[] = "TMPDIR";

// The test's environment with TMPDIR replaced by `temp_dir`.
std::vector<std::string> ChildEnvironment(const std::string& temp_dir) {
  std::vector<std::string> variables;
  const std::string prefix = absl::StrCat(kTempDirVariable, "=");
  for (char** variable = environ; *variable != nullptr; ++variable) {
    if (!absl::StartsWith(*variable, prefix)) variables.push_back(*variable);
  }
  variables.push_back(prefix + temp_dir);
  return variables;
}

std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

std::vector<pid_t> LiveProcessesOfGroup(pid_t group) {
  std::vector<pid_t> members;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    // /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
    const std::string stat = ReadFile(entry.path().string() + "/stat");
    const size_t comm_end = stat.rfind(')');
    if (comm_end == std::string::npos) continue;  // it exited meanwhile
    const std::vector<absl::string_view> fields =
        absl::StrSplit(absl::string_view(stat).substr(comm_end + 1), ' ', absl::SkipEmpty());
    pid_t process_group = 0;
    if (fields.size() < 3 || !absl::SimpleAtoi(fields[2], &process_group)) continue;
    if (process_group == group && fields[0] != "Z" && fields[0] != "X") members.push_back(pid);
  }
  return members;
}

absl::StatusOr<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                                 const std::string& log_path) {
  std::error_code error;
  const std::filesystem::path log_folder =
      std::filesystem::absolute(std::filesystem::path(log_path).parent_path(), error);
  std::vector<std::string> environment = ChildEnvironment(log_folder.string());
  std::vector<std::string> arguments = argv;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Process group 0: a new group whose id is the child's pid.
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, arguments[0].c_str(), &actions, &attributes,
                             NullTerminated(arguments).data(), NullTerminated(environment).data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot start ", argv[0], ": ", strerror(rc)));
  }
  return ChildProcess(pid, log_path);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), log_path_(std::move(other.log_path_)), exit_code_(other.exit_code_) {
  other.pid_ = -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  // While the child is unreaped (a zombie at worst) its pid cannot be reused, so the group id
  // still names only the child and what it started.
  const auto group_gone = [this] { return Exited() && LiveProcessesOfGroup(pid_).empty(); };
  kill(-pid_, SIGTERM);
  if (!WaitUntil(group_gone, kChildTerminateGrace)) {
    kill(-pid_, SIGKILL);
    if (!WaitUntil(group_gone, kChildKillWait)) {
      LOG(ERROR) << "child " << pid_ << " (log " << log_path_ << "): processes "
                 << absl::StrJoin(LiveProcessesOfGroup(pid_), ", ") << " of its group outlived "
                 << "SIGKILL by " << absl::FormatDuration(kChildKillWait);
    }
  }
  if (Exited()) {
    int status = 0;
    waitpid(pid_, &status, 0);  // a zombie: returns at once
  }
}

bool ChildProcess::Exited() {
  if (exit_code_.has_value()) return true;
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  // WNOWAIT leaves the child a zombie, keeping its pid (the group's id) from reuse.
  if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != pid_) {
    return false;
  }
  exit_code_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  return true;
}

std::optional<int> ChildProcess::WaitForExit(absl::Duration timeout) {
  if (WaitUntil([this] { return Exited(); }, timeout)) return exit_code_;
  return std::nullopt;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0 && !Exited()) kill(pid_, signal);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ChildProcess::ReadLog() const { return ReadFile(log_path_); }

}  // namespace granary
