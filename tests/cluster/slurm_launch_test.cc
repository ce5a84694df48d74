// Tests of launch/slurm.sbatch. SlurmJobTest (and SlurmLostWorkerTest, jobs that lose a worker)
// runs it against a real single-node Slurm that the test starts itself (munged, slurmctld and
// slurmd as child processes on 127.0.0.1, with state, sockets and free ports of its own, killed by
// pid at the end); where Slurm cannot start (not installed, not root, a daemon fails) the test is
// skipped and says why, and launch/test.sh fails the run (launch/install_deps.sh installs Slurm).
// SlurmSbatchArgsTest checks the script's own errors without Slurm.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

const std::string kSource = GRANARY_SOURCE_DIR;
const std::string kBin = GRANARY_BINARY_DIR;
const std::string kSbatchScript = kSource + "/launch/slurm.sbatch";
const std::string kDemoConfig = kSource + "/configs/demo.pbtxt";
// munged's socket and an idle node: a healthy single-node Slurm takes 1-3 s.
constexpr absl::Duration kDaemonStartTimeout = absl::Seconds(30);
// sbatch --wait polls the controller with growing intervals (up to 10 s).
constexpr absl::Duration kJobTimeout = absl::Seconds(180);
constexpr absl::Duration kCommandTimeout = absl::Seconds(30);

std::string Tail(const std::string& text, int lines) {
  std::vector<std::string> all = absl::StrSplit(text, '\n');
  if (static_cast<int>(all.size()) > lines) all.erase(all.begin(), all.end() - lines);
  return absl::StrJoin(all, "\n");
}

// The path of program `name` in the usual system folders, or "" if it is not installed.
std::string FindProgram(const std::string& name) {
  for (const char* dir :
       {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"}) {
    std::string path = absl::StrCat(dir, "/", name);
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// A TCP port of 127.0.0.1 free right now (the kernel's pick for port 0).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// A per-test folder named by its canonical path (the scripts print canonical paths).
std::string MakeTestDir() {
  std::string pattern = ::testing::TempDir() + "/granary-slurm-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return "";
  char* canonical = realpath(pattern.c_str(), nullptr);
  std::string dir = canonical == nullptr ? "" : canonical;
  free(canonical);
  return dir;
}

class SlurmJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> missing;
    for (const char* program :
         {"munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel"}) {
      std::string path = FindProgram(program);
      if (path.empty()) missing.push_back(program);
      programs_[program] = path;
    }
    if (!missing.empty()) {
      GTEST_SKIP() << "Slurm is not installed here (missing " << absl::StrJoin(missing, ", ")
                   << "; launch/install_deps.sh installs slurm-wlm and munge)";
    }
    if (geteuid() != 0) {
      GTEST_SKIP() << "slurmd must run as root to start job steps; this test runs as uid "
                   << geteuid();
    }
    dir_ = MakeTestDir();
    ASSERT_FALSE(dir_.empty());
    conf_ = dir_ + "/slurm.conf";
    StartSlurm();
  }

  void TearDown() override {
    // A job a failed test left running would outlive the daemons: its tasks are children of
    // slurmstepd, not of slurmd. This controller is the test's own, so all its jobs are ours.
    if (slurmctld_ != nullptr && !slurmctld_->WaitForExit(absl::ZeroDuration()).has_value()) {
      Run({programs_["scancel"], "--user=root"}, "scancel-all");
      WaitUntil(
          [&] {
            return Run({programs_["squeue"], "--noheader"}, "squeue") == 0 &&
                   absl::StripAsciiWhitespace(ReadFile(dir_ + "/squeue.log")).empty();
          },
          absl::Seconds(20));
    }
    // Children first, so that no daemon outlives what it serves; SIGKILL (the destructor)
    // follows for any that ignores SIGTERM.
    for (std::unique_ptr<ChildProcess>* daemon : {&slurmd_, &slurmctld_, &munged_}) {
      if (*daemon == nullptr) continue;
      (*daemon)->Signal(SIGTERM);
      (*daemon)->WaitForExit(absl::Seconds(10));
      daemon->reset();
    }
    // With the servers' ipc folders: the daemons, and so the jobs, have TMPDIR in it.
    RemoveTempDirUnlessFailed(dir_);
  }

  // Starts munged, slurmctld and slurmd for a one-node cluster "localhost" and waits until the
  // node is idle; skips the test, with the daemons' logs, if that does not happen.
  void StartSlurm() {
    for (const char* sub : {"/state", "/spool"}) ASSERT_EQ(mkdir((dir_ + sub).c_str(), 0700), 0);
    std::string key(1024, '\0');
    std::ifstream("/dev/urandom").read(key.data(), key.size());
    std::ofstream(dir_ + "/munge.key") << key;
    ASSERT_EQ(chmod((dir_ + "/munge.key").c_str(), 0600), 0);
    const std::string socket = dir_ + "/munge.socket";
    munged_ =
        Start({programs_["munged"], "--foreground", "--force", "--key-file=" + dir_ + "/munge.key",
               "--socket=" + socket, "--pid-file=" + dir_ + "/munged.pid",
               "--log-file=" + dir_ + "/munged.log", "--seed-file=" + dir_ + "/munged.seed"},
              "munged");
    if (!WaitUntil([&] { return access(socket.c_str(), F_OK) == 0; }, kDaemonStartTimeout)) {
      GTEST_SKIP() << "munged did not start here:\n" << Tail(munged_->ReadLog(), 20);
    }

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    std::ofstream(conf_) << absl::StrCat(
        "ClusterName=granarytest\n"
        "SlurmctldHost=localhost(127.0.0.1)\n"
        "SlurmctldPort=",
        FreePort(), "\n", "SlurmdPort=", FreePort(), "\n",
        "SlurmUser=root\n"
        "SlurmdUser=root\n"
        "AuthType=auth/munge\n"
        "CredType=cred/munge\n"
        "AuthInfo=socket=",
        socket, "\n", "StateSaveLocation=", dir_, "/state\n", "SlurmdSpoolDir=", dir_, "/spool\n",
        "SlurmctldPidFile=", dir_, "/slurmctld.pid\n", "SlurmdPidFile=", dir_, "/slurmd.pid\n",
        "SlurmctldLogFile=", dir_, "/slurmctld.log\n", "SlurmdLogFile=", dir_, "/slurmd.log\n",
        "ProctrackType=proctrack/linuxproc\n"
        "TaskPlugin=task/none\n"
        "SwitchType=switch/none\n"
        "MpiDefault=none\n"
        "ReturnToService=2\n"
        "SchedulerType=sched/builtin\n"
        "SelectType=select/cons_tres\n"
        "SelectTypeParameters=CR_Core\n"
        "JobAcctGatherType=jobacct_gather/none\n"
        "AccountingStorageType=accounting_storage/none\n"
        "NodeName=localhost NodeAddr=127.0.0.1 CPUs=",
        cpus > 0 ? cpus : 1,
        " RealMemory=100 State=UNKNOWN\n"
        "PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n");
    slurmctld_ = Start({programs_["slurmctld"], "-D", "-f", conf_}, "slurmctld");
    slurmd_ = Start({programs_["slurmd"], "-D", "-N", "localhost", "-f", conf_}, "slurmd");
    bool idle = WaitUntil(
        [&] {
          if (slurmctld_->WaitForExit(absl::ZeroDuration()).has_value() ||
              slurmd_->WaitForExit(absl::ZeroDuration()).has_value()) {
            return true;
          }
          return Run({programs_["sinfo"], "--noheader", "--format=%T"}, "sinfo") == 0 &&
                 absl::StrContains(ReadFile(dir_ + "/sinfo.log"), "idle");
        },
        kDaemonStartTimeout);
    if (!idle || slurmctld_->WaitForExit(absl::ZeroDuration()).has_value() ||
        slurmd_->WaitForExit(absl::ZeroDuration()).has_value()) {
      GTEST_SKIP() << "Slurm did not start here (no idle node within "
                   << absl::FormatDuration(kDaemonStartTimeout) << ").\nslurmctld:\n"
                   << Tail(ReadFile(dir_ + "/slurmctld.log") + slurmctld_->ReadLog(), 15)
                   << "\nslurmd:\n"
                   << Tail(ReadFile(dir_ + "/slurmd.log") + slurmd_->ReadLog(), 15);
    }
  }

  std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv,
                                      const std::string& name) {
    std::vector<std::string> with_conf = {"/usr/bin/env", "SLURM_CONF=" + conf_};
    with_conf.insert(with_conf.end(), argv.begin(), argv.end());
    std::string log = dir_ + "/" + name + ".log";
    unlink(log.c_str());
    absl::StatusOr<ChildProcess> child = ChildProcess::Start(with_conf, log);
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::make_unique<ChildProcess>(*std::move(child)) : nullptr;
  }

  // Runs a Slurm client command to its end (bounded); returns its exit code, -1 on timeout.
  int Run(const std::vector<std::string>& argv, const std::string& name) {
    std::unique_ptr<ChildProcess> command = Start(argv, name);
    if (command == nullptr) return -1;
    std::optional<int> code = command->WaitForExit(kCommandTimeout);
    return code.value_or(-1);
  }

  // sbatch arguments for a 1 scheduler + 1 server + `workers` workers job of this test's cluster.
  std::vector<std::string> Sbatch(std::vector<std::string> script_flags, bool wait,
                                  int workers = 1) {
    std::vector<std::string> argv = {
        programs_["sbatch"], wait ? "--wait" : "--parsable", absl::StrCat("--ntasks=", 2 + workers),
        // 3 tasks on a node that may have fewer CPUs.
        "--overcommit", "--time=5", "--chdir=" + dir_, "--output=" + dir_ + "/job.out",
        kSbatchScript, "--servers=1", "--config=" + kDemoConfig, "--bin_dir=" + kBin,
        "--run_dir=" + run_dir(), absl::StrCat("--port=", FreePort())};
    argv.insert(argv.end(), script_flags.begin(), script_flags.end());
    return argv;
  }

  std::string run_dir() const { return dir_ + "/run"; }

  std::map<std::string, std::string> programs_;
  std::string dir_;
  std::string conf_;
  std::unique_ptr<ChildProcess> munged_, slurmctld_, slurmd_;
};

TEST_F(SlurmJobTest, RunsTheDemoAsOneJobStepWithRolesFromTheTaskRank) {
  std::unique_ptr<ChildProcess> sbatch = Start(Sbatch({"--job=demo"}, /*wait=*/true), "sbatch");
  std::optional<int> code = sbatch->WaitForExit(kJobTimeout);
  ASSERT_TRUE(code.has_value()) << "sbatch --wait still running:\n" << sbatch->ReadLog();
  std::string output = ReadFile(dir_ + "/job.out");
  ASSERT_EQ(*code, 0) << sbatch->ReadLog() << output;
  EXPECT_TRUE(absl::StrContains(output, "slurm.sbatch: all 3 roles exited 0; logs in " + run_dir()))
      << output;

  // Task 0 is the scheduler, 1 the server, 2 the worker, each with its own log.
  const std::vector<std::string> roles = {"scheduler", "server-0", "worker-0"};
  for (size_t rank = 0; rank < roles.size(); ++rank) {
    std::string log = ReadFile(run_dir() + "/" + roles[rank] + ".log");
    EXPECT_TRUE(absl::StartsWith(
        log, absl::StrCat("slurm.sbatch: ", roles[rank], " is task ", rank, " of job ")))
        << log;
    EXPECT_TRUE(absl::StrContains(log, "on localhost (127.0.0.1)")) << log;
    // Every role authenticated its links with the keys the script generated.
    EXPECT_TRUE(
        absl::StrContains(log, "links authenticated with the CURVE keys of " + run_dir() + "/keys"))
        << log;
  }
  struct stat key_file;
  ASSERT_EQ(stat((run_dir() + "/keys/cluster.curve").c_str(), &key_file), 0);
  EXPECT_EQ(key_file.st_mode & 0777, 0600u);
  std::string worker = ReadFile(run_dir() + "/worker-0.log");
  EXPECT_TRUE(absl::StrContains(worker, "1 workers x 20 rounds: rows match (max abs error 0)"))
      << worker;
  std::string scheduler = ReadFile(run_dir() + "/scheduler.log");
  EXPECT_TRUE(absl::StrContains(scheduler, "all workers finished their jobs")) << scheduler;
  std::string statuses = ReadFile(run_dir() + "/exit_status");
  for (const std::string& role : roles) {
    EXPECT_TRUE(absl::StrContains(statuses, role + " localhost 0\n")) << statuses;
  }
}

// Role flags reach the tasks one per line: a flag with spaces and quotes stays one flag.
TEST_F(SlurmJobTest, RoleFlagsWithSpacesAndQuotesReachTheTasksIntact) {
  const std::string quoted_run = dir_ + "/it's run";
  const std::string data = dir_ + "/a b/it's data";
  std::unique_ptr<ChildProcess> sbatch =
      Start(Sbatch({"--job=demo", "--run_dir=" + quoted_run, "--server_flag=--data_dir=" + data,
                    "--worker_flags=--v=0  --logbuflevel=-1"},
                   /*wait=*/true),
            "sbatch");
  std::optional<int> code = sbatch->WaitForExit(kJobTimeout);
  ASSERT_TRUE(code.has_value()) << "sbatch --wait still running:\n" << sbatch->ReadLog();
  std::string output = ReadFile(dir_ + "/job.out");
  ASSERT_EQ(*code, 0) << sbatch->ReadLog() << output;
  EXPECT_TRUE(
      absl::StrContains(output, "slurm.sbatch: all 3 roles exited 0; logs in " + quoted_run))
      << output;
  EXPECT_TRUE(absl::StrContains(ReadFile(quoted_run + "/worker-0.log"), "rows match"));
  struct stat info;
  EXPECT_EQ(stat((data + "/server-0").c_str(), &info), 0) << data;
}

TEST_F(SlurmJobTest, AFailedRoleFailsTheJobNamingTheRole) {
  std::unique_ptr<ChildProcess> sbatch =
      Start(Sbatch({"--job=train", "--worker_flags=--job_config=/nonexistent/job.pbtxt"},
                   /*wait=*/true),
            "sbatch");
  std::optional<int> code = sbatch->WaitForExit(kJobTimeout);
  ASSERT_TRUE(code.has_value()) << "sbatch --wait still running:\n" << sbatch->ReadLog();
  std::string output = ReadFile(dir_ + "/job.out");
  EXPECT_EQ(*code, 1) << sbatch->ReadLog() << output;
  EXPECT_TRUE(absl::StrContains(output,
                                "slurm.sbatch: worker-0 on localhost exited with status 1; last 20 "
                                "lines of " +
                                    run_dir() + "/worker-0.log"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "/nonexistent/job.pbtxt: cannot open config file"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "slurm.sbatch: FAILED: ")) << output;
}

// --restarts: a failed step is started again in RUN_DIR/attempt-K; a role that fails every
// time fails the job after the last attempt.
TEST_F(SlurmJobTest, FailedStepIsStartedAgainUpToRestarts) {
  std::unique_ptr<ChildProcess> sbatch = Start(
      Sbatch({"--job=train", "--restarts=1", "--worker_flags=--job_config=/nonexistent/job.pbtxt"},
             /*wait=*/true),
      "sbatch");
  std::optional<int> code = sbatch->WaitForExit(kJobTimeout);
  ASSERT_TRUE(code.has_value()) << "sbatch --wait still running:\n" << sbatch->ReadLog();
  std::string output = ReadFile(dir_ + "/job.out");
  EXPECT_EQ(*code, 1) << sbatch->ReadLog() << output;
  EXPECT_TRUE(absl::StrContains(
      output, "slurm.sbatch: attempt 1 failed (status 1); starting the cluster again"))
      << output;
  EXPECT_TRUE(
      absl::StrContains(output, "slurm.sbatch: attempt 2 of 2 in " + run_dir() + "/attempt-2"))
      << output;
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir() + "/attempt-2/worker-0.log"),
                                "/nonexistent/job.pbtxt: cannot open config file"))
      << output;
}

// A job of 1 scheduler, 1 server and 2 workers (with none left alive the scheduler would end the
// job instead of waiting for a replacement) running the idle job with fast heartbeats, and the
// run folder of its step (`attempt`) in which each test kills worker-0.
class SlurmLostWorkerTest : public SlurmJobTest {
 protected:
  void StartJob(const std::vector<std::string>& more_flags) {
    std::vector<std::string> flags = {"--job=idle", "--scheduler_flags=--heartbeat_timeout=1.5",
                                      "--server_flags=--heartbeat_interval=0.2",
                                      "--worker_flags=--heartbeat_interval=0.2"};
    flags.insert(flags.end(), more_flags.begin(), more_flags.end());
    sbatch_ = Start(Sbatch(flags, /*wait=*/true, /*workers=*/2), "sbatch");
  }

  // Until `done`, or the job ended (sbatch --wait returned) without it.
  bool WaitFor(const std::function<bool()>& done) {
    return WaitUntil(
               [&] { return done() || sbatch_->WaitForExit(absl::ZeroDuration()).has_value(); },
               kJobTimeout) &&
           done();
  }

  // SIGKILLs worker-0's binary once the cluster formed: its pid from its registration in its own
  // log (a child of the job's task). Returns that pid, 0 on failure.
  pid_t KillWorkerZero(const std::string& step_dir) {
    const std::regex registered(R"(registered as worker [0-9]+ \((?:[^)]*, )?pid ([0-9]+)\))");
    pid_t victim = 0;
    bool formed = WaitFor([&] {
      std::smatch match;
      std::string log = ReadFile(step_dir + "/worker-0.log");
      if (!std::regex_search(log, match, registered)) return false;
      victim = std::stoi(match[1]);
      return absl::StrContains(ReadFile(step_dir + "/scheduler.log"), "cluster formed");
    });
    EXPECT_TRUE(formed) << ReadFile(dir_ + "/job.out") << ReadFile(step_dir + "/worker-0.log");
    if (!formed) return 0;
    EXPECT_EQ(absl::StripAsciiWhitespace(ReadFile(absl::StrCat("/proc/", victim, "/comm"))),
              "granary_worker");
    EXPECT_EQ(kill(victim, SIGKILL), 0);
    return victim;
  }

  // scancel --batch --signal=TERM: the cluster shuts down in order. Returns the job's exit code.
  std::optional<int> ShutDownInOrder() {
    std::smatch submitted;
    const std::string sbatch_log = sbatch_->ReadLog();
    EXPECT_TRUE(
        std::regex_search(sbatch_log, submitted, std::regex("Submitted batch job ([0-9]+)")))
        << sbatch_log;
    if (submitted.empty()) return std::nullopt;
    EXPECT_EQ(Run({programs_["scancel"], "--batch", "--signal=TERM", submitted[1]}, "scancel"), 0)
        << ReadFile(dir_ + "/scancel.log");
    return sbatch_->WaitForExit(kJobTimeout);
  }

  std::unique_ptr<ChildProcess> sbatch_;
};

// --restarts under Slurm: a worker killed after the cluster formed is started again alone by its
// task, on its node, once the scheduler declared it dead; the step goes on, no attempt-2.
TEST_F(SlurmLostWorkerTest, KilledWorkerIsRestartedAloneByItsTaskWithoutARollBack) {
  StartJob({"--restarts=1"});
  const std::string attempt = run_dir() + "/attempt-1";
  pid_t victim = KillWorkerZero(attempt);
  ASSERT_GT(victim, 0);
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadFile(attempt + "/scheduler.log"), "joined the running cluster");
  })) << ReadFile(attempt + "/worker-0.log")
      << ReadFile(attempt + "/scheduler.log");

  // The replacement holds the dead one's rank; then the cluster shuts down in order.
  std::optional<int> code = ShutDownInOrder();
  ASSERT_TRUE(code.has_value()) << "sbatch --wait still running:\n" << sbatch_->ReadLog();
  std::string output = ReadFile(dir_ + "/job.out");
  EXPECT_EQ(*code, 0) << sbatch_->ReadLog() << output;
  EXPECT_TRUE(absl::StrContains(output,
                                "slurm.sbatch: worker-0 on localhost was killed by SIGKILL "
                                "and was replaced"))
      << output;
  EXPECT_TRUE(absl::StrContains(
      output, "all 4 roles exited 0 or lost a worker the job went on without (1 replaced, 0 not)"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "attempt 1 succeeded")) << output;
  EXPECT_FALSE(absl::StrContains(output, "attempt 2")) << output;
  EXPECT_NE(access((run_dir() + "/attempt-2").c_str(), F_OK), 0);

  const std::string scheduler = ReadFile(attempt + "/scheduler.log");
  EXPECT_TRUE(absl::StrContains(scheduler, absl::StrCat("(pid ", victim, ") is dead")))
      << scheduler;
  std::smatch joined;
  ASSERT_TRUE(std::regex_search(
      scheduler, joined,
      std::regex(
          R"(replacement worker [0-9]+ \((?:[^)]*, )?pid ([0-9]+)\) joined the running cluster)")))
      << scheduler;
  const std::string restarted = ReadFile(attempt + "/worker-0.restart-1.log");
  EXPECT_TRUE(absl::StartsWith(
      restarted, "slurm.sbatch: worker-0.restart-1 (restart 1 of worker-0) is task 2 of job "))
      << restarted;
  EXPECT_TRUE(absl::StrContains(restarted, absl::StrCat("pid ", joined[1].str(), ")")))
      << restarted;
  EXPECT_TRUE(absl::StrContains(scheduler, "shutting down the cluster: requested by control"))
      << scheduler;
  const std::string statuses = ReadFile(attempt + "/exit_status");
  EXPECT_TRUE(absl::StrContains(statuses, "worker-0 localhost 137 replaced\n")) << statuses;
  EXPECT_TRUE(absl::StrContains(statuses, "worker-0.restart-1 localhost 0\n")) << statuses;
  EXPECT_EQ(absl::StripAsciiWhitespace(ReadFile(run_dir() + "/restarts_left")), "0");
}

// Without a restart left, the task of a lost worker ends with status 0 and the job goes on
// without it: no failure once the scheduler exits 0.
TEST_F(SlurmLostWorkerTest, LostWorkerWithoutARestartLeftFailsNoStep) {
  StartJob({});
  pid_t victim = KillWorkerZero(run_dir());
  ASSERT_GT(victim, 0);
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadFile(run_dir() + "/exit_status"), "worker-0 localhost 137 lost\n");
  })) << ReadFile(run_dir() + "/worker-0.log");
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir() + "/worker-0.log"),
                                absl::StrCat("slurm.sbatch: worker-0 (pid ", victim,
                                             ") was killed by SIGKILL after it joined the cluster; "
                                             "not restarted")));
  std::optional<int> code = ShutDownInOrder();
  ASSERT_TRUE(code.has_value()) << "sbatch --wait still running:\n" << sbatch_->ReadLog();
  std::string output = ReadFile(dir_ + "/job.out");
  EXPECT_EQ(*code, 0) << sbatch_->ReadLog() << output;
  EXPECT_TRUE(absl::StrContains(output,
                                "slurm.sbatch: worker-0 on localhost was killed by SIGKILL; "
                                "the job finished without it"))
      << output;
  EXPECT_TRUE(absl::StrContains(
      output, "all 4 roles exited 0 or lost a worker the job went on without (0 replaced, 1 not)"))
      << output;
  const std::string scheduler = ReadFile(run_dir() + "/scheduler.log");
  EXPECT_TRUE(absl::StrContains(scheduler, absl::StrCat("(pid ", victim, ") is dead")))
      << scheduler;
  EXPECT_FALSE(absl::StrContains(scheduler, "joined the running cluster")) << scheduler;
  EXPECT_NE(access((run_dir() + "/worker-0.restart-1.log").c_str(), F_OK), 0);
  const std::string statuses = ReadFile(run_dir() + "/exit_status");
  EXPECT_TRUE(absl::StrContains(statuses, "worker-1 localhost 0\n")) << statuses;
  EXPECT_TRUE(absl::StrContains(statuses, "scheduler localhost 0\n")) << statuses;
}

TEST_F(SlurmJobTest, TermToTheBatchShellShutsTheClusterDownInOrder) {
  std::unique_ptr<ChildProcess> sbatch = Start(Sbatch({"--job=idle"}, /*wait=*/false), "sbatch");
  ASSERT_EQ(sbatch->WaitForExit(kCommandTimeout), 0) << sbatch->ReadLog();
  std::string job_id(absl::StripAsciiWhitespace(sbatch->ReadLog()));
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(ReadFile(run_dir() + "/scheduler.log"), "cluster formed"); },
      kJobTimeout))
      << ReadFile(dir_ + "/job.out");
  ASSERT_EQ(Run({programs_["scancel"], "--batch", "--signal=TERM", job_id}, "scancel"), 0)
      << ReadFile(dir_ + "/scancel.log");
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(ReadFile(dir_ + "/job.out"), "roles exited 0; logs in"); },
      kJobTimeout))
      << ReadFile(dir_ + "/job.out");
  std::string output = ReadFile(dir_ + "/job.out");
  EXPECT_TRUE(absl::StrContains(output, "caught SIGTERM, asking the scheduler at 127.0.0.1:"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "all 3 roles exited 0")) << output;
  EXPECT_TRUE(absl::StrContains(ReadFile(run_dir() + "/scheduler.log"),
                                "shutting down the cluster: requested by control"));
}

// The script's own checks, run outside Slurm with the variables it reads set by hand.
class SlurmSbatchArgsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestDir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { RemoveTempDirUnlessFailed(dir_); }

  // Runs slurm.sbatch with `environment` (NAME=VALUE; SLURM_* not listed are unset).
  std::string RunScript(std::vector<std::string> environment, std::vector<std::string> flags,
                        int* code) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "SLURM_JOB_ID",      "-u",
                                     "SLURM_NTASKS", "-u", "SLURM_JOB_NODELIST"};
    argv.insert(argv.end(), environment.begin(), environment.end());
    argv.push_back(kSbatchScript);
    argv.insert(argv.end(), flags.begin(), flags.end());
    std::string log = dir_ + "/script.log";
    unlink(log.c_str());
    absl::StatusOr<ChildProcess> script = ChildProcess::Start(argv, log);
    EXPECT_TRUE(script.ok()) << script.status();
    if (!script.ok()) return "";
    *code = script->WaitForExit(kCommandTimeout).value_or(-1);
    return script->ReadLog();
  }

  std::string dir_;
};

TEST_F(SlurmSbatchArgsTest, ReportsWhatIsWrongBeforeStartingAnything) {
  const std::vector<std::string> job = {"SLURM_JOB_ID=7", "SLURM_NTASKS=3",
                                        "SLURM_JOB_NODELIST=localhost", "SLURM_SUBMIT_DIR=" + dir_};
  const std::vector<std::string> good = {"--config=" + kDemoConfig, "--bin_dir=" + kBin,
                                         "--run_dir=" + dir_ + "/run"};
  struct Case {
    std::vector<std::string> environment;
    std::vector<std::string> flags;
    std::string error;
  };
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  const std::vector<Case> cases = {
      {{}, with(good, {"--servers=1"}), "runs as a Slurm batch job: sbatch launch/slurm.sbatch"},
      {job, with(good, {"--servers=2"}),
       "3 tasks leave no worker: 1 scheduler + 2 servers + at least 1 worker need sbatch "
       "--ntasks >= 4"},
      {job, with(good, {"--servers=0"}),
       "--servers (or GRANARY_SERVERS) must be a positive integer, got '0'"},
      {job, {"--servers=1"}, "--config is required"},
      {job, with(good, {"--servers=1", "--config=" + dir_ + "/missing.pbtxt"}),
       "check failed: config file '" + dir_ + "/missing.pbtxt' does not exist or is not readable"},
      {job, with(good, {"--servers=1", "--bin_dir=" + dir_}),
       "check failed: no executable " + dir_ + "/granary_scheduler (pass --bin_dir)"},
      {job, with(good, {"--servers=1", "--port=99999"}),
       "--port must be a port number, got '99999'"},
      {job, with(good, {"--servers=1", "--colour=red"}),
       "unknown argument '--colour' (role flags go after --)"},
      // The shared options slurm.sbatch does not take: sbatch --ntasks and --time set them.
      {job, with(good, {"--servers=1", "--workers=1"}),
       "unknown argument '--workers' (role flags go after --)"},
      {job, with(good, {"--servers=1", "--timeout=60"}),
       "unknown argument '--timeout' (role flags go after --)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.error);
    int code = 0;
    std::string output = RunScript(c.environment, c.flags, &code);
    EXPECT_EQ(code, 1) << output;
    EXPECT_TRUE(absl::StrContains(output, "slurm.sbatch: " + c.error)) << output;
    EXPECT_NE(access((dir_ + "/run/scheduler.addr").c_str(), F_OK), 0);
  }
}

}  // namespace
}  // namespace granary
