// Tests of the launchers that supervise a cluster from one shell: launch/ssh.sh (through a
// stand-in for ssh that runs the remote command on this machine, so that "hosts" are names and
// addresses of 127.0.0.0/8) and launch/local.sh, which share launch/lib/cluster.sh. Every wait
// is bounded; a test kills only the processes its launcher reported starting.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/temp_dir.h"
#include "zmq.hpp"

namespace granary {
namespace {

const std::string kSource = GRANARY_SOURCE_DIR;
const std::string kBin = GRANARY_BINARY_DIR;
const std::string kDemoConfig = kSource + "/configs/demo.pbtxt";
constexpr absl::Duration kLauncherTimeout = absl::Seconds(120);
constexpr absl::Duration kStartTimeout = absl::Seconds(30);

// Stands in for ssh: skips ssh's options, then runs the remote command with `bash -c` in a
// child process, so that, as with ssh, killing the client leaves the command running. A host
// ending in .invalid fails as an unreachable one does (status 255). With REFUSE_SHUTDOWN set
// it refuses `granary_ctl ... shutdown`, as when the scheduler's host cannot be reached.
constexpr char kFakeSsh[] = R"(#!/usr/bin/env bash
while (($# > 0)); do
  case "$1" in
    -o | -p | -i | -l | -F) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
host="$1"
shift
echo "$host: $*" >>"$(dirname "$0")/ssh_calls"
if [[ "$host" == *.invalid ]]; then
  echo "ssh: Could not resolve hostname $host: Name or service not known" >&2
  exit 255
fi
if [[ -n "${REFUSE_SHUTDOWN:-}" && "$*" == *granary_ctl*shutdown* ]]; then
  echo "refused: $*" >&2
  exit 1
fi
bash -c "$*" <&0 &
wait $!
)";

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class LaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/granary-launch-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    // The launchers name files by their canonical path.
    char* canonical = realpath(pattern.c_str(), nullptr);
    ASSERT_NE(canonical, nullptr);
    dir_ = canonical;
    free(canonical);
    run_dir_ = dir_ + "/run";
    hostfile_ = dir_ + "/hosts";
    fake_ssh_ = dir_ + "/fake_ssh";
    std::ofstream(fake_ssh_) << kFakeSsh;
    ASSERT_EQ(chmod(fake_ssh_.c_str(), 0755), 0);
  }

  // Whatever the launcher left running (it should leave nothing) is killed by the pid it
  // reported, if that process still carries this run's cluster id. Then the test's folder,
  // with the servers' ipc folders (their TMPDIR, tests/testing/child_process.h), goes, unless
  // the test failed and its logs may tell why.
  void TearDown() override {
    std::string cluster_id(absl::StripAsciiWhitespace(ReadFile(run_dir_ + "/cluster_id")));
    for (pid_t pid : cluster_id.empty() ? std::vector<pid_t>() : RolePids()) {
      if (absl::StrContains(ReadFile(absl::StrCat("/proc/", pid, "/cmdline")), cluster_id)) {
        ADD_FAILURE() << "pid " << pid << " of this run still runs";
        kill(pid, SIGKILL);
      }
    }
    RemoveTempDirUnlessFailed(dir_);
  }

  void WriteHostFile(const std::string& text) { std::ofstream(hostfile_) << text; }

  // Makes this test's paths awkward: the run folder gets a single quote, and the returned
  // launcher flags name a config and a bin folder (a link to the build's) whose paths hold
  // spaces and quotes, and servers' data under data_dir(), a folder with a space, passed as
  // one --server_flag.
  std::vector<std::string> UseAwkwardPaths() {
    run_dir_ = dir_ + "/it's run";
    const std::string folder = dir_ + "/a b";
    EXPECT_EQ(mkdir(folder.c_str(), 0755), 0);
    const std::string config = folder + "/demo's config.pbtxt";
    std::ofstream(config) << ReadFile(kDemoConfig);
    const std::string bin_dir = dir_ + "/bin dir";
    EXPECT_EQ(symlink(kBin.c_str(), bin_dir.c_str()), 0);
    return {"--config=" + config, "--bin_dir=" + bin_dir, "--server_flag=--data_dir=" + data_dir()};
  }
  std::string data_dir() const { return dir_ + "/a b/it's data"; }

  // Starts launch/ssh.sh HOSTFILE with this test's stand-in for ssh and `flags`.
  std::unique_ptr<ChildProcess> StartSsh(std::vector<std::string> flags) {
    std::vector<std::string> argv = {kSource + "/launch/ssh.sh",
                                     hostfile_,
                                     "--ssh=" + fake_ssh_,
                                     "--bin_dir=" + kBin,
                                     "--run_dir=" + run_dir_,
                                     "--config=" + kDemoConfig,
                                     "--timeout=100"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return Start(argv);
  }

  std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv) {
    absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, dir_ + "/launcher.log");
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::make_unique<ChildProcess>(*std::move(child)) : nullptr;
  }

  // Waits for the launcher and returns its exit code (-1 if it did not exit in time).
  static int ExitCodeOf(ChildProcess& launcher) {
    std::optional<int> code = launcher.WaitForExit(kLauncherTimeout);
    EXPECT_TRUE(code.has_value()) << "launcher still running:\n" << launcher.ReadLog();
    return code.value_or(-1);
  }

  // The pid each role runs as on its host, from the first line ssh.sh's remote shell wrote in
  // the role's log ("ssh.sh: NAME runs as pid PID on HOST").
  std::vector<pid_t> RolePids() const {
    std::vector<pid_t> pids;
    for (const std::string& line : Lines(ReadFile(run_dir_ + "/pids"))) {
      std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (fields.empty()) continue;
      std::string log = ReadFile(run_dir_ + "/" + fields[0] + ".log");
      std::string prefix = absl::StrCat("ssh.sh: ", fields[0], " runs as pid ");
      if (!absl::StartsWith(log, prefix)) continue;
      std::vector<std::string> words = absl::StrSplit(log.substr(prefix.size()), ' ');
      pid_t pid = 0;
      if (absl::SimpleAtoi(words[0], &pid)) pids.push_back(pid);
    }
    return pids;
  }

  bool AllRolesExited() const {
    for (pid_t pid : RolePids()) {
      if (kill(pid, 0) == 0) return false;
    }
    return true;
  }

  std::string dir_;
  std::string run_dir_;
  std::string hostfile_;
  std::string fake_ssh_;
};

TEST_F(LaunchTest, SshRunsTheDemoOnTheHostsOfTheHostFile) {
  // Three "hosts" of this machine: the first keeps the scheduler alone, the third takes workers.
  WriteHostFile(
      "# the scheduler only\n"
      "127.0.0.1 slots=0\n"
      "\n"
      "localhost   # servers and workers\n"
      "127.0.0.2 roles=worker addr=127.0.0.2\n");
  auto launcher = StartSsh({"--servers=2", "--workers=2", "--job=demo"});
  ASSERT_EQ(ExitCodeOf(*launcher), 0) << launcher->ReadLog();
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "all 5 processes exited 0")) << output;

  // Servers round-robin over the hosts that take them, then workers.
  std::string pids = ReadFile(run_dir_ + "/pids");
  for (const char* placed : {"scheduler 127.0.0.1", "server-0 localhost", "server-1 localhost",
                             "worker-0 localhost", "worker-1 127.0.0.2"}) {
    std::vector<std::string> name_host = absl::StrSplit(placed, ' ');
    bool found = false;
    for (const std::string& line : Lines(pids)) {
      std::vector<std::string> fields = absl::StrSplit(line, ' ');
      found |= fields.size() == 3 && fields[0] == name_host[0] && fields[2] == name_host[1];
    }
    EXPECT_TRUE(found) << placed << " not in pids:\n" << pids;
  }
  EXPECT_EQ(RolePids().size(), 5u);
  for (int i = 0; i < 2; ++i) {
    std::string log = ReadFile(absl::StrCat(run_dir_, "/worker-", i, ".log"));
    EXPECT_TRUE(absl::StrContains(log, "2 workers x 20 rounds: rows match (max abs error 0)"))
        << log;
  }
  // Each role listens on its host's address; the scheduler on the first host's.
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"),
                                "scheduler listening on 127.0.0.1:"));
  EXPECT_TRUE(
      absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"), "all workers finished their jobs"));
  EXPECT_TRUE(absl::StartsWith(ReadFile(run_dir_ + "/scheduler.addr"), "127.0.0.1:"));
  EXPECT_TRUE(absl::StrContains(ReadFile(dir_ + "/ssh_calls"), "--host=127.0.0.2"));
  EXPECT_TRUE(AllRolesExited());
  // The keys generated on the first host reached the others (0600), and every role used them.
  struct stat key_file;
  ASSERT_EQ(stat((run_dir_ + "/keys/cluster.curve").c_str(), &key_file), 0);
  EXPECT_EQ(key_file.st_mode & 0777, 0600u);
  EXPECT_FALSE(
      absl::StrContains(ReadFile(dir_ + "/ssh_calls"), ReadFile(run_dir_ + "/keys/cluster.curve")))
      << "the keys travelled on a command line";
  EXPECT_TRUE(absl::StrContains(ReadFile(dir_ + "/ssh_calls"), "127.0.0.2: umask 077"))
      << "the keys were not copied to the third host";
  for (const std::string& line : Lines(pids)) {
    const std::string name = std::vector<std::string>(absl::StrSplit(line, ' '))[0];
    EXPECT_TRUE(
        absl::StrContains(ReadFile(run_dir_ + "/" + name + ".log"),
                          "links authenticated with the CURVE keys of " + run_dir_ + "/keys"))
        << name;
  }
}

// Every word of a remote command is quoted: the remote shell sees paths with spaces and quotes
// intact, in the checks, the roles' command lines and granary_ctl's.
TEST_F(LaunchTest, SshTakesPathsWithSpacesAndQuotes) {
  WriteHostFile("127.0.0.1\n");
  std::vector<std::string> flags = UseAwkwardPaths();
  flags.insert(flags.end(), {"--run_dir=" + run_dir_, "--servers=1", "--workers=1", "--job=demo"});
  auto launcher = StartSsh(flags);
  ASSERT_EQ(ExitCodeOf(*launcher), 0) << launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(launcher->ReadLog(), "ssh.sh: all 3 processes exited 0"))
      << launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir_ + "/worker-0.log"), "rows match"));
  EXPECT_TRUE(std::filesystem::is_directory(data_dir() + "/server-0")) << data_dir();
  EXPECT_TRUE(AllRolesExited());
}

TEST_F(LaunchTest, SshStopsAClusterWithPathsWithSpacesAndQuotesThroughTheScheduler) {
  WriteHostFile("127.0.0.1\n");
  std::vector<std::string> flags = UseAwkwardPaths();
  flags.insert(flags.end(), {"--run_dir=" + run_dir_, "--servers=1", "--workers=1", "--job=idle"});
  auto launcher = StartSsh(flags);
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"), "cluster formed"); },
      kStartTimeout))
      << launcher->ReadLog();
  launcher->Signal(SIGTERM);
  EXPECT_EQ(ExitCodeOf(*launcher), 128 + SIGTERM);
  std::string output = launcher->ReadLog();
  // granary_ctl, in the bin folder with a space, ran and the roles exited on its request.
  EXPECT_FALSE(absl::StrContains(output, "granary_ctl shutdown failed")) << output;
  EXPECT_TRUE(absl::StrContains(output, "all 3 processes exited 0")) << output;
  EXPECT_FALSE(absl::StrContains(output, "sending SIG")) << output;
  EXPECT_TRUE(AllRolesExited());
}

TEST_F(LaunchTest, SshExitsNonZeroNamingTheFailedRoleAndItsHost) {
  WriteHostFile("127.0.0.1\n");
  auto launcher = StartSsh({"--servers=1", "--workers=1", "--job=train",
                            "--worker_flags=--job_config=/nonexistent/job.pbtxt"});
  EXPECT_EQ(ExitCodeOf(*launcher), 1);
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "ssh.sh: worker-0 (pid ")) << output;
  EXPECT_TRUE(absl::StrContains(output, " on 127.0.0.1, ssh pid ")) << output;
  EXPECT_TRUE(absl::StrContains(
      output, "exited with status 1; last 20 lines of " + run_dir_ + "/worker-0.log"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "/nonexistent/job.pbtxt: cannot open config file"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "FAILED:")) << output;
  EXPECT_TRUE(WaitUntil([&] { return AllRolesExited(); }, absl::Seconds(10)));
}

// --restarts: a failed attempt is started again in RUN_DIR/attempt-K; a role that fails every
// time fails the run after the last attempt.
TEST_F(LaunchTest, SshStartsAFailedAttemptAgainUpToRestarts) {
  WriteHostFile("127.0.0.1\n");
  auto launcher = StartSsh({"--servers=1", "--workers=1", "--job=train", "--restarts=1",
                            "--worker_flags=--job_config=/nonexistent/job.pbtxt"});
  EXPECT_EQ(ExitCodeOf(*launcher), 1);
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "ssh.sh: attempt 1 failed (status 1)")) << output;
  EXPECT_TRUE(absl::StrContains(output, "ssh.sh: attempt 2 of 2 in " + run_dir_ + "/attempt-2"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "ssh.sh: FAILED: all 2 attempts failed")) << output;
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir_ + "/attempt-2/worker-0.log"),
                                "/nonexistent/job.pbtxt: cannot open config file"))
      << output;
}

// --restarts: a worker killed on its host is restarted alone there, once the scheduler declared
// it dead, and joins the running cluster; the attempt goes on and the dead one is no failure.
TEST_F(LaunchTest, SshRestartsADeadWorkerAloneOnItsHost) {
  WriteHostFile("127.0.0.1\nlocalhost\n");
  const std::string fast_heartbeats = "--heartbeat_interval=0.2";
  auto launcher =
      StartSsh({"--servers=1", "--workers=2", "--job=idle", "--restarts=1",
                "--scheduler_flags=--heartbeat_timeout=1", "--server_flags=" + fast_heartbeats,
                "--worker_flags=" + fast_heartbeats});
  run_dir_ += "/attempt-1";  // the roles, for RolePids and the checks at the end
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"), "cluster formed"); },
      kStartTimeout))
      << launcher->ReadLog();
  const std::string prefix = "ssh.sh: worker-1 runs as pid ";
  const std::string first_log = ReadFile(run_dir_ + "/worker-1.log");
  ASSERT_TRUE(absl::StartsWith(first_log, prefix)) << first_log;
  pid_t victim = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      std::vector<std::string>(absl::StrSplit(first_log.substr(prefix.size()), ' '))[0], &victim));
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"),
                                 "joined the running cluster");
      },
      kStartTimeout))
      << launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir_ + "/worker-1.restart-1.log"),
                                "ssh.sh: worker-1.restart-1 runs as pid"));
  launcher->Signal(SIGTERM);
  EXPECT_EQ(ExitCodeOf(*launcher), 128 + SIGTERM);
  const std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "restarted worker-1 alone as worker-1.restart-1"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "was replaced")) << output;
  EXPECT_TRUE(absl::StrContains(output, "all 5 processes exited 0 or were replaced")) << output;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/run/attempt-2")) << output;
  EXPECT_TRUE(AllRolesExited());
}

TEST_F(LaunchTest, SshStopsTheClusterThroughTheSchedulerOnSigterm) {
  WriteHostFile("127.0.0.1\nlocalhost\n");
  auto launcher = StartSsh({"--servers=1", "--workers=1", "--job=idle"});
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(launcher->ReadLog(), "stop with Ctrl-C"); },
                        kStartTimeout))
      << launcher->ReadLog();
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"), "cluster formed"); },
      kStartTimeout));
  launcher->Signal(SIGTERM);
  EXPECT_EQ(ExitCodeOf(*launcher), 128 + SIGTERM);
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "asking the scheduler at 127.0.0.1:")) << output;
  EXPECT_TRUE(absl::StrContains(output, "all 3 processes exited 0")) << output;
  EXPECT_FALSE(absl::StrContains(output, "sending SIG")) << output;
  // granary_ctl ran on the scheduler's host.
  EXPECT_TRUE(
      absl::StrContains(ReadFile(dir_ + "/ssh_calls"), "127.0.0.1: " + kBin + "/granary_ctl"));
  EXPECT_TRUE(AllRolesExited());
}

TEST_F(LaunchTest, SshStopsRolesByPidOnTheirHostWhenTheSchedulerCannotBeAsked) {
  ASSERT_EQ(setenv("REFUSE_SHUTDOWN", "1", 1), 0);
  WriteHostFile("127.0.0.1\nlocalhost\n");
  auto launcher = StartSsh({"--servers=1", "--workers=1", "--job=idle"});
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"), "cluster formed"); },
      kStartTimeout))
      << launcher->ReadLog();
  launcher->Signal(SIGTERM);
  EXPECT_EQ(ExitCodeOf(*launcher), 128 + SIGTERM);
  unsetenv("REFUSE_SHUTDOWN");
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "granary_ctl shutdown failed")) << output;
  EXPECT_TRUE(absl::StrContains(output, "sending SIGTERM to scheduler (pid ")) << output;
  // The stand-in ssh clients did not pass the signal on: only a kill on the host stops a role.
  std::vector<pid_t> pids = RolePids();
  ASSERT_EQ(pids.size(), 3u);
  EXPECT_TRUE(WaitUntil([&] { return AllRolesExited(); }, absl::Seconds(10))) << output;
  for (pid_t pid : pids) {
    EXPECT_TRUE(absl::StrContains(ReadFile(dir_ + "/ssh_calls"), absl::StrCat("kill -TERM ", pid)));
  }
}

TEST_F(LaunchTest, SshReportsABadHostFileWithFileAndLine) {
  struct Case {
    std::string hosts;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1 slots=two\n", "hosts:1: slots must be a number >= 0, got 'slots=two'"},
      {"# comment\n\n127.0.0.1 colour=red\n",
       "hosts:3: unknown hint 'colour=red' (know slots=N, roles=server,worker, addr=IP)"},
      {"127.0.0.1\n127.0.0.1\n", "hosts:2: host '127.0.0.1' is listed twice (first on line 1)"},
      {"127.0.0.1 roles=scheduler\n",
       "hosts:1: roles lists server and/or worker (the scheduler runs on the first host)"},
      {"127.0.0.1 addr=node1\n", "hosts:1: addr must be an IPv4 address, got 'node1'"},
      {"slots=2\n", "hosts:1: a line starts with the host name, got 'slots=2'"},
      {"no-such-host.invalid\n",
       "hosts:1: cannot resolve host 'no-such-host.invalid' to an IPv4 address here; add addr=IP"},
      {"127.0.0.1\n10.1.2.3\n",
       "hosts:1: host '127.0.0.1' resolves to loopback address 127.0.0.1, which the other hosts "
       "cannot reach"},
      {"# nobody\n", "hosts: lists no host"},
      {"127.0.0.1 slots=1\n",
       "has no free slot for another worker (need 1 servers and 1 workers; raise slots= or add "
       "hosts)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.hosts);
    WriteHostFile(c.hosts);
    auto launcher = StartSsh({"--servers=1", "--workers=1"});
    EXPECT_EQ(ExitCodeOf(*launcher), 1);
    std::string output = launcher->ReadLog();
    EXPECT_TRUE(absl::StrContains(output, "ssh.sh: ")) << output;
    EXPECT_TRUE(absl::StrContains(output, c.error)) << output;
    // Nothing started: the host file is read before the run folder exists.
    EXPECT_FALSE(absl::StrContains(ReadFile(dir_ + "/ssh_calls"), " && exec ")) << output;
    EXPECT_EQ(access(run_dir_.c_str(), F_OK), -1);
    ASSERT_EQ(truncate((dir_ + "/launcher.log").c_str(), 0), 0);
  }
}

TEST_F(LaunchTest, SshChecksEveryHostBeforeStartingAnyRole) {
  WriteHostFile("127.0.0.1\nunreachable.invalid addr=127.0.0.3\n");
  auto launcher = StartSsh({"--servers=1", "--workers=1"});
  EXPECT_EQ(ExitCodeOf(*launcher), 1);
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(
      output, "check failed: cannot run commands on host 'unreachable.invalid' (" + hostfile_ +
                  ":2) over " + fake_ssh_ + " (exit status 255)"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "Could not resolve hostname unreachable.invalid"))
      << output;
  EXPECT_FALSE(absl::StrContains(ReadFile(dir_ + "/ssh_calls"), " && exec ")) << output;

  WriteHostFile("127.0.0.1\n");
  launcher = StartSsh({"--servers=1", "--workers=1", "--bin_dir=" + dir_ + "/nobin",
                       "--run_dir=" + dir_ + "/run2"});
  EXPECT_EQ(ExitCodeOf(*launcher), 1);
  output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "check failed: host '127.0.0.1' (" + hostfile_ +
                                            ":1): no executable " + dir_ +
                                            "/nobin/granary_scheduler (pass --bin_dir)"))
      << output;

  launcher = StartSsh({"--servers=1", "--workers=1", "--config=" + dir_ + "/missing.pbtxt",
                       "--run_dir=" + dir_ + "/run3"});
  EXPECT_EQ(ExitCodeOf(*launcher), 1);
  output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "config file " + dir_ + "/missing.pbtxt is not readable"))
      << output;
  EXPECT_FALSE(absl::StrContains(ReadFile(dir_ + "/ssh_calls"), " && exec ")) << output;
}

TEST_F(LaunchTest, SshRejectsBadArguments) {
  WriteHostFile("127.0.0.1\n");
  struct Case {
    std::vector<std::string> argv;
    std::string error;
  };
  const std::string ssh = kSource + "/launch/ssh.sh";
  const std::vector<Case> cases = {
      {{ssh, "--servers=1", "--workers=1", "--config=" + kDemoConfig}, "HOSTFILE is required"},
      {{ssh, dir_ + "/nohosts", "--servers=1", "--workers=1", "--config=" + kDemoConfig},
       "check failed: host file '" + dir_ + "/nohosts' does not exist or is not readable"},
      {{ssh, hostfile_, "--servers=0", "--workers=1", "--config=" + kDemoConfig},
       "--servers must be a positive integer, got '0'"},
      {{ssh, hostfile_, "--servers=1", "--workers=1", "--config=" + kDemoConfig,
        "--scheduler_port=70000"},
       "--scheduler_port must be a port number (0: any free one), got '70000'"},
      {{ssh, hostfile_, hostfile_, "--servers=1", "--workers=1"}, "one HOSTFILE only"},
      {{ssh, hostfile_, "--servers=1", "--workers=1", "--config=" + kDemoConfig, "--colour=red"},
       "unknown argument '--colour' (role flags go after --)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.error);
    auto launcher = Start(c.argv);
    EXPECT_EQ(ExitCodeOf(*launcher), 1);
    EXPECT_TRUE(absl::StrContains(launcher->ReadLog(), "ssh.sh: " + c.error))
        << launcher->ReadLog();
    ASSERT_EQ(truncate((dir_ + "/launcher.log").c_str(), 0), 0);
  }
}

// local.sh shares the supervision with ssh.sh (launch/lib/cluster.sh); these guard that it
// still runs, reports and stops a cluster as before.
TEST_F(LaunchTest, LocalRunsTheDemoAndReportsAFailedRole) {
  auto launcher = Start({kSource + "/launch/local.sh", "--servers=2", "--workers", "2", "--config",
                         kDemoConfig, "--bin_dir=" + kBin, "--run_dir=" + run_dir_});
  ASSERT_EQ(ExitCodeOf(*launcher), 0) << launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(launcher->ReadLog(), "local.sh: all 5 processes exited 0"))
      << launcher->ReadLog();
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(
        absl::StrContains(ReadFile(absl::StrCat(run_dir_, "/worker-", i, ".log")), "rows match"));
  }
  std::string pids = ReadFile(run_dir_ + "/pids");
  EXPECT_TRUE(absl::StartsWith(pids, "scheduler ")) << pids;
  EXPECT_EQ(std::count(pids.begin(), pids.end(), '\n'), 5) << pids;

  ASSERT_EQ(truncate((dir_ + "/launcher.log").c_str(), 0), 0);
  launcher = Start({kSource + "/launch/local.sh", "--servers=1", "--workers=1", "--job=train",
                    "--config=" + kDemoConfig, "--bin_dir=" + kBin, "--run_dir=" + dir_ + "/run2",
                    "--worker_flags=--job_config=/nonexistent/job.pbtxt"});
  EXPECT_EQ(ExitCodeOf(*launcher), 1);
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "local.sh: worker-0 (pid ")) << output;
  EXPECT_TRUE(absl::StrContains(
      output, ") exited with status 1; last 20 lines of " + dir_ + "/run2/worker-0.log"))
      << output;
}

TEST_F(LaunchTest, LocalTakesPathsWithSpacesAndQuotes) {
  std::vector<std::string> flags = UseAwkwardPaths();
  std::vector<std::string> argv = {kSource + "/launch/local.sh", "--servers=1", "--workers=1",
                                   "--run_dir", run_dir_,
                                   // Split at whitespace: two flags.
                                   "--worker_flags", "--v=0  --logbuflevel=-1"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto launcher = Start(argv);
  ASSERT_EQ(ExitCodeOf(*launcher), 0) << launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(launcher->ReadLog(), "local.sh: all 3 processes exited 0"))
      << launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir_ + "/worker-0.log"), "rows match"));
  EXPECT_TRUE(absl::StartsWith(ReadFile(run_dir_ + "/pids"), "scheduler "));
  EXPECT_TRUE(std::filesystem::is_directory(data_dir() + "/server-0")) << data_dir();
}

TEST_F(LaunchTest, LocalStopsTheClusterOnSigterm) {
  auto launcher = Start({kSource + "/launch/local.sh", "--servers=1", "--workers=1", "--job=idle",
                         "--config=" + kDemoConfig, "--bin_dir=" + kBin, "--run_dir=" + run_dir_});
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(launcher->ReadLog(), "stop with Ctrl-C"); },
                        kStartTimeout))
      << launcher->ReadLog();
  launcher->Signal(SIGTERM);
  EXPECT_EQ(ExitCodeOf(*launcher), 128 + SIGTERM);
  std::string output = launcher->ReadLog();
  EXPECT_TRUE(absl::StrContains(output, "local.sh: asking the scheduler at 127.0.0.1:")) << output;
  EXPECT_TRUE(absl::StrContains(output, "local.sh: interrupted by SIGTERM")) << output;
  for (const std::string& line : Lines(ReadFile(run_dir_ + "/pids"))) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    pid_t pid = 0;
    ASSERT_TRUE(absl::SimpleAtoi(fields[1], &pid)) << line;
    EXPECT_NE(kill(pid, 0), 0) << line << " still runs";
  }
}

// local.sh generates the cluster's CURVE keys into the run folder (0600) and hands them to
// every role: a peer without them gets no reply from the scheduler and cannot shut the cluster
// down, while granary_ctl with --keys_dir can.
TEST_F(LaunchTest, LocalAuthenticatesEveryLinkWithKeysInTheRunFolder) {
  auto launcher = Start({kSource + "/launch/local.sh", "--servers=1", "--workers=1", "--job=idle",
                         "--config=" + kDemoConfig, "--bin_dir=" + kBin, "--run_dir=" + run_dir_});
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(launcher->ReadLog(), "stop with Ctrl-C"); },
                        kStartTimeout))
      << launcher->ReadLog();
  const std::string keys_dir = run_dir_ + "/keys";
  struct stat info;
  ASSERT_EQ(stat((keys_dir + "/cluster.curve").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  const std::string address(absl::StripAsciiWhitespace(ReadFile(run_dir_ + "/scheduler.addr")));
  const std::string cluster_id(absl::StripAsciiWhitespace(ReadFile(run_dir_ + "/cluster_id")));

  // A raw ZeroMQ client without keys: whatever it sends, no reply (not even an error naming
  // the cluster) comes back.
  {
    zmq::context_t context(1);
    zmq::socket_t raw(context, zmq::socket_type::dealer);
    raw.set(zmq::sockopt::linger, 0);
    raw.connect("tcp://" + address);
    raw.send(zmq::str_buffer("guess"), zmq::send_flags::none);
    zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(1500)), 0);
  }
  // One that knows the cluster's public key but holds a keypair of its own is refused by the
  // scheduler's ZAP handler, which logs its address.
  {
    std::string public_key;
    std::ifstream(keys_dir + "/cluster.curve") >> public_key;
    zmq::context_t context(1);
    zmq::socket_t raw(context, zmq::socket_type::dealer);
    raw.set(zmq::sockopt::linger, 0);
    char own_public[41], own_secret[41];
    ASSERT_EQ(zmq_curve_keypair(own_public, own_secret), 0);
    raw.set(zmq::sockopt::curve_serverkey, public_key);
    raw.set(zmq::sockopt::curve_publickey, std::string(own_public));
    raw.set(zmq::sockopt::curve_secretkey, std::string(own_secret));
    raw.connect("tcp://" + address);
    raw.send(zmq::str_buffer("guess"), zmq::send_flags::none);
    zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(1500)), 0);
    EXPECT_TRUE(
        absl::StrContains(ReadFile(run_dir_ + "/scheduler.log"), "rejected a peer at 127.0.0.1"))
        << ReadFile(run_dir_ + "/scheduler.log");
  }
  // granary_ctl's exit code for `flags` plus the verb `shutdown`; -1 if it did not exit.
  auto shutdown_with = [&](std::vector<std::string> flags, const std::string& log) {
    std::vector<std::string> argv = {kBin + "/granary_ctl", "--scheduler=" + address,
                                     "--cluster_id=" + cluster_id, "--timeout=2"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("shutdown");
    absl::StatusOr<ChildProcess> ctl = ChildProcess::Start(argv, dir_ + "/" + log);
    EXPECT_TRUE(ctl.ok()) << ctl.status();
    if (!ctl.ok()) return -1;
    std::optional<int> code = ctl->WaitForExit(kStartTimeout);
    return code.value_or(-1);
  };
  // granary_ctl without the keys (told to try unauthenticated) cannot shut the cluster down ...
  EXPECT_NE(shutdown_with({"--insecure_no_auth"}, "ctl-keyless.log"), 0);
  EXPECT_FALSE(launcher->WaitForExit(absl::Seconds(1)).has_value()) << launcher->ReadLog();
  // ... and with them it can: the run ends cleanly.
  EXPECT_EQ(shutdown_with({"--keys_dir=" + keys_dir}, "ctl-keyed.log"), 0)
      << ReadFile(dir_ + "/ctl-keyed.log");
  EXPECT_EQ(ExitCodeOf(*launcher), 0) << launcher->ReadLog();
}

// launch/test.sh fails a run with a skipped test unless launch/allowed_skips.txt names it;
// launch/lib/check_skips.sh reads which tests did not run from ctest's JUnit report.
TEST_F(LaunchTest, CheckSkipsFailsOnlyForSkipsTheAllowListDoesNotName) {
  // The shape ctest 3.25 writes: one <testcase> tag a line, gtest's output in <system-out>.
  std::ofstream(dir_ + "/junit.xml") << R"xml(<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="(empty)" tests="4" failures="0" disabled="1" skipped="2">
	<testcase name="A.Runs" classname="A.Runs" time="0.02" status="run">
		<system-out>[ RUN      ] A.Runs
[       OK ] A.Runs (0 ms)
</system-out>
	</testcase>
	<testcase name="A.Skips" classname="A.Skips" time="0.02" status="notrun">
		<skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>
		<system-out>[ RUN      ] A.Skips
/src/a_test.cc:3: Skipped
tool &lt;x&gt; is not installed
[  SKIPPED ] A.Skips (0 ms)
</system-out>
	</testcase>
	<testcase name="B.Skips" classname="B.Skips" time="0.01" status="notrun">
		<skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>
		<system-out>[ RUN      ] B.Skips
/src/b_test.cc:4: Skipped
no data
[  SKIPPED ] B.Skips (0 ms)
</system-out>
	</testcase>
	<testcase name="B.Off" classname="B.Off" time="0" status="disabled">
		<system-out>Disabled</system-out>
	</testcase>
</testsuite>
)xml";
  const std::string script = kSource + "/launch/lib/check_skips.sh";
  auto check = [&](const std::string& allow_list, std::string* output) {
    std::ofstream(dir_ + "/allowed.txt") << allow_list;
    std::ofstream(dir_ + "/launcher.log");  // emptied: the log holds this run's output only
    auto process = Start({script, dir_ + "/junit.xml", dir_ + "/allowed.txt"});
    int code = ExitCodeOf(*process);
    *output = absl::StrCat(code, "\n", process->ReadLog());
  };
  std::string output;
  check("# every test that did not run\nA.Skips  needs tool x\nB.Skips no data here\nB.Off  off\n",
        &output);
  EXPECT_EQ(output, "0\n");

  check("A.Skips  needs tool x\n", &output);
  EXPECT_TRUE(absl::StartsWith(output, "1\n")) << output;
  EXPECT_TRUE(absl::StrContains(output,
                                "check_skips.sh: FAILED: 2 test(s) did not run and are "
                                "not listed in " +
                                    dir_ +
                                    "/allowed.txt:\n  B.Skips\n      no data\n"
                                    "  B.Off\n"))
      << output;
  EXPECT_FALSE(absl::StrContains(output, "A.Skips")) << output;

  check("", &output);
  EXPECT_TRUE(absl::StrContains(output, "  A.Skips\n      tool <x> is not installed\n")) << output;

  check("A.Skips\n", &output);
  EXPECT_EQ(output, "2\ncheck_skips.sh: " + dir_ +
                        "/allowed.txt:1: 'A.Skips' needs the reason it "
                        "may skip\n");
}

}  // namespace
}  // namespace granary
