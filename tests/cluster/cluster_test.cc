// End-to-end tests of real granary_* processes on 127.0.0.1. Every port is picked free by the
// processes themselves (port 0; the scheduler publishes its address in a file), every wait is
// bounded, and every process is killed by pid when a test ends.
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/curve_keys.h"
#include "common/feature_key.h"
#include "common/message.h"
#include "common/scheduler_client.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "worker/kv_worker.h"

namespace granary {
namespace {

const std::string kBin = GRANARY_BINARY_DIR;
const std::string kDemoConfig = std::string(GRANARY_SOURCE_DIR) + "/configs/demo.pbtxt";
constexpr absl::Duration kStartTimeout = absl::Seconds(20);
constexpr absl::Duration kExitTimeout = absl::Seconds(60);

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/granary-cluster-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    run_dir_ = pattern;
    cluster_id_ = absl::StrCat("test-", getpid(), "-",
                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    // Every process and this test's own clients authenticate with the cluster's keys.
    keys_dir_ = run_dir_ + "/keys";
    absl::StatusOr<CurveKeys> keys = GenerateCurveKeys();
    ASSERT_TRUE(keys.ok()) << keys.status();
    ASSERT_TRUE(WriteCurveKeys(keys_dir_, *keys).ok());
    keys_ = *keys;
  }

  // Starts the scheduler and waits until it published its address.
  void StartScheduler(int servers, int workers, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kBin + "/granary_scheduler",
                                     "--config=" + kDemoConfig,
                                     "--port=0",
                                     "--address_file=" + run_dir_ + "/scheduler.addr",
                                     "--cluster_id=" + cluster_id_,
                                     "--keys_dir=" + keys_dir_,
                                     absl::StrCat("--num_servers=", servers),
                                     absl::StrCat("--num_workers=", workers)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    scheduler_ = Start(argv, "scheduler");
    ASSERT_TRUE(WaitUntil(
        [&] {
          std::ifstream in(run_dir_ + "/scheduler.addr");
          return static_cast<bool>(std::getline(in, address_)) && !address_.empty();
        },
        kStartTimeout))
        << "scheduler did not publish its address:\n"
        << scheduler_->ReadLog();
  }

  std::unique_ptr<ChildProcess> StartNode(const std::string& binary, const std::string& name,
                                          std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kBin + "/" + binary, "--scheduler=" + address_,
                                     "--cluster_id=" + cluster_id_, "--keys_dir=" + keys_dir_};
    if (binary == "granary_server") argv.push_back("--data_dir=" + run_dir_ + "/data");
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Start(argv, name);
  }

  std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv,
                                      const std::string& name) {
    absl::StatusOr<ChildProcess> child =
        ChildProcess::Start(argv, absl::StrCat(run_dir_, "/", name, ".log"));
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::make_unique<ChildProcess>(*std::move(child)) : nullptr;
  }

  static void ExpectExitsWith(ChildProcess& child, int code) {
    std::optional<int> exit = child.WaitForExit(kExitTimeout);
    ASSERT_TRUE(exit.has_value()) << child.log_path() << " still running:\n" << child.ReadLog();
    EXPECT_EQ(*exit, code) << child.log_path() << ":\n" << child.ReadLog();
  }

  SchedulerClientOptions ClientOptions(proto::Role role) const {
    SchedulerClientOptions options;
    options.scheduler_address = address_;
    options.cluster_id = cluster_id_;
    options.role = role;
    options.register_timeout = kStartTimeout;
    options.curve = keys_;
    return options;
  }

  // A raw DEALER in `context`, holding the cluster's keys, connected to the server in the view
  // of `client` (registered): a peer that speaks the wire format by hand.
  static zmq::socket_t ConnectRawToServer(zmq::context_t& context, const SchedulerClient& client,
                                          const CurveKeys& keys) {
    proto::NodeInfo server_info;
    for (const proto::NodeInfo& node : client.view().nodes()) {
      if (node.role() == proto::SERVER) server_info = node;
    }
    zmq::socket_t raw(context, zmq::socket_type::dealer);
    ConfigureSocket(raw);
    ConfigureCurveClient(raw, keys);
    raw.connect(TcpEndpoint(server_info.host(), server_info.port()));
    return raw;
  }

  std::string run_dir_;
  std::string keys_dir_;
  CurveKeys keys_;
  std::string cluster_id_;
  std::string address_;
  std::unique_ptr<ChildProcess> scheduler_;
};

TEST_F(ClusterTest, TwoServersTwoWorkersPushingConcurrentlyGiveExactRows) {
  StartScheduler(2, 2);
  std::vector<std::unique_ptr<ChildProcess>> servers, workers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(
        StartNode("granary_server", absl::StrCat("server-", i), {"--stats_interval=0.05"}));
  }
  for (int i = 0; i < 2; ++i) {
    workers.push_back(StartNode("granary_worker", absl::StrCat("worker-", i),
                                {"--job=demo", "--demo_keys=3000", "--demo_rounds=10"}));
  }
  for (auto& worker : workers) ExpectExitsWith(*worker, 0);
  for (auto& worker : workers) {
    EXPECT_NE(worker->ReadLog().find("2 workers x 10 rounds: rows match (max abs error 0)"),
              std::string::npos)
        << worker->ReadLog();
  }
  // The scheduler shuts everyone down once both workers are done.
  for (auto& server : servers) ExpectExitsWith(*server, 0);
  ExpectExitsWith(*scheduler_, 0);
  EXPECT_NE(scheduler_->ReadLog().find("all workers finished their jobs"), std::string::npos);
  // Each server reports its load, so a hot shard is visible.
  for (auto& server : servers) {
    EXPECT_NE(server->ReadLog().find("pushes ("), std::string::npos) << server->ReadLog();
  }
}

TEST_F(ClusterTest, KilledServerIsReportedDeadWithinTheTimeout) {
  const std::vector<std::string> fast_heartbeats = {"--heartbeat_interval=0.2",
                                                    "--heartbeat_timeout=3"};
  StartScheduler(2, 1, {"--heartbeat_timeout=1"});
  auto server0 = StartNode("granary_server", "server-a", fast_heartbeats);
  auto server1 = StartNode("granary_server", "server-b", fast_heartbeats);
  auto worker = StartNode("granary_worker", "worker", {"--job=idle", "--heartbeat_interval=0.2"});
  ASSERT_TRUE(
      WaitUntil([&] { return scheduler_->ReadLog().find("cluster formed") != std::string::npos; },
                kStartTimeout))
      << scheduler_->ReadLog();

  absl::Time killed_at = absl::Now();
  server1->Signal(SIGKILL);
  std::string dead_line = absl::StrCat("pid ", server1->pid(), ") is dead: no heartbeat for");
  ASSERT_TRUE(WaitUntil([&] { return scheduler_->ReadLog().find(dead_line) != std::string::npos; },
                        absl::Seconds(10)))
      << scheduler_->ReadLog();
  // Reported within the 1 s timeout plus a heartbeat interval, a 0.2 s liveness check and
  // generous slack for a loaded CI machine.
  EXPECT_LT(absl::Now() - killed_at, absl::Seconds(4));
  // The other nodes are told.
  std::string notice = absl::StrCat("scheduler reports server");
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::string log = worker->ReadLog();
        return log.find(notice) != std::string::npos &&
               log.find(absl::StrCat("pid ", server1->pid(), ") dead")) != std::string::npos;
      },
      absl::Seconds(5)))
      << worker->ReadLog();

  // One command shuts the rest of the cluster down in order.
  auto ctl = Start({kBin + "/granary_ctl", "--scheduler=" + address_, "--cluster_id=" + cluster_id_,
                    "--keys_dir=" + keys_dir_, "--timeout=20", "shutdown"},
                   "ctl");
  ExpectExitsWith(*ctl, 0);
  ExpectExitsWith(*server0, 0);
  ExpectExitsWith(*worker, 0);
  ExpectExitsWith(*scheduler_, 0);
}

TEST_F(ClusterTest, NodesExitWithAnErrorWhenTheSchedulerDies) {
  StartScheduler(1, 1);
  const std::vector<std::string> fast = {"--heartbeat_interval=0.2", "--heartbeat_timeout=1"};
  auto server = StartNode("granary_server", "server", fast);
  std::vector<std::string> worker_flags = fast;
  worker_flags.push_back("--job=idle");
  auto worker = StartNode("granary_worker", "worker", worker_flags);
  // The nodes, not the scheduler, must have the view: the scheduler logs "cluster formed"
  // before its views arrive.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return server->ReadLog().find("registered as server") != std::string::npos &&
               worker->ReadLog().find("registered as worker") != std::string::npos;
      },
      kStartTimeout))
      << server->ReadLog() << worker->ReadLog();
  scheduler_->Signal(SIGKILL);
  ExpectExitsWith(*server, 1);
  ExpectExitsWith(*worker, 1);
  std::string lost = absl::StrCat("scheduler ", address_, " silent for");
  EXPECT_NE(server->ReadLog().find(lost), std::string::npos) << server->ReadLog();
  EXPECT_NE(worker->ReadLog().find(lost), std::string::npos) << worker->ReadLog();
}

TEST_F(ClusterTest, RegisteredNodeExitsWithAnErrorWhenTheSchedulerDiesBeforeTheView) {
  // The cluster never forms (1 of 2 servers comes), so the server waits for its view; the
  // register timeout (60 s) is far longer than the heartbeat timeout.
  StartScheduler(2, 1, {"--register_timeout=60"});
  auto server =
      StartNode("granary_server", "server",
                {"--heartbeat_interval=0.2", "--heartbeat_timeout=1", "--register_timeout=60"});
  ASSERT_TRUE(WaitUntil(
      [&] { return scheduler_->ReadLog().find("registered server pid") != std::string::npos; },
      kStartTimeout))
      << scheduler_->ReadLog();
  absl::Time killed_at = absl::Now();
  scheduler_->Signal(SIGKILL);
  // Within a few heartbeat timeouts, not the register timeout.
  std::optional<int> exit = server->WaitForExit(absl::Seconds(15));
  ASSERT_TRUE(exit.has_value()) << server->ReadLog();
  EXPECT_EQ(*exit, 1) << server->ReadLog();
  EXPECT_LT(absl::Now() - killed_at, absl::Seconds(15));
  EXPECT_NE(server->ReadLog().find(absl::StrCat("scheduler ", address_, " silent for")),
            std::string::npos)
      << server->ReadLog();
}

TEST_F(ClusterTest, WorkerWithoutAShutdownOrderGivesUpAtItsExitTimeoutAndFailsTheRun) {
  StartScheduler(1, 1, {"--heartbeat_timeout=1"});
  const std::vector<std::string> fast = {"--heartbeat_interval=0.2", "--heartbeat_timeout=1"};
  auto server = StartNode("granary_server", "server", fast);
  std::vector<std::string> worker_flags = fast;
  // An idle worker never reports JOB_DONE, so no shutdown order comes.
  worker_flags.insert(worker_flags.end(), {"--job=idle", "--exit_timeout=2"});
  auto worker = StartNode("granary_worker", "worker", worker_flags);
  std::optional<int> exit = worker->WaitForExit(absl::Seconds(30));
  ASSERT_TRUE(exit.has_value()) << worker->ReadLog();
  EXPECT_EQ(*exit, 1) << worker->ReadLog();
  EXPECT_NE(worker->ReadLog().find(
                absl::StrCat("no shutdown order from scheduler ", address_, " within 2s")),
            std::string::npos)
      << worker->ReadLog();
  // The scheduler does not wait for the dead worker forever: the run ends, failed, naming it.
  ExpectExitsWith(*scheduler_, 1);
  ExpectExitsWith(*server, 0);
  EXPECT_NE(scheduler_->ReadLog().find("worker 0 ("), std::string::npos) << scheduler_->ReadLog();
  EXPECT_NE(scheduler_->ReadLog().find("before it finished its job"), std::string::npos)
      << scheduler_->ReadLog();
}

TEST_F(ClusterTest, GarbageToAServerProcessGetsAnErrorAndItKeepsServing) {
  StartScheduler(1, 1);
  auto server = StartNode("granary_server", "server");
  // This test process is the cluster's worker.
  zmq::context_t context(1);
  SchedulerClient client(&context, ClientOptions(proto::WORKER));
  ASSERT_TRUE(client.Register().ok());
  zmq::socket_t raw = ConnectRawToServer(context, client, keys_);
  std::vector<zmq::message_t> garbage;
  garbage.emplace_back(std::string("\x08\x96\x01 definitely not a header"));
  zmq::send_multipart(raw, garbage);
  zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_GT(zmq::poll(&item, 1, std::chrono::seconds(10)), 0) << server->ReadLog();
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(raw, std::back_inserter(frames)));
  proto::Header error;
  ASSERT_TRUE(error.ParseFromArray(frames[0].data(), static_cast<int>(frames[0].size())));
  EXPECT_EQ(error.command(), proto::ERROR_REPLY);
  EXPECT_EQ(error.error(), kRejectedText);  // the reason goes to the server's log only

  KVWorkerOptions options;
  options.cluster_id = cluster_id_;
  options.request_timeout = absl::Seconds(20);
  options.curve = keys_;
  KVWorker worker(&context, client.view(), options);
  ASSERT_TRUE(worker.Start().ok());
  std::vector<uint64_t> keys = {FeatureKey("f", "a"), FeatureKey("f", "b")};
  std::vector<float> grads(keys.size() * 8, 2.0f);
  ASSERT_TRUE(worker.Wait(worker.Push("demo", keys, grads)).ok());
  std::vector<float> rows;
  ASSERT_TRUE(worker.Wait(worker.Pull("demo", keys, &rows)).ok());
  for (float v : rows) EXPECT_EQ(v, -1.0f);  // lr 0.5 x grad 2

  client.ReportJobDone();
  EXPECT_TRUE(client.WaitForShutdown(absl::Seconds(20)).ok());
  ExpectExitsWith(*server, 0);
  ExpectExitsWith(*scheduler_, 0);
  EXPECT_NE(server->ReadLog().find("unparsable header"), std::string::npos);
  EXPECT_NE(server->ReadLog().find("rejected a message from 127.0.0.1"), std::string::npos);
}

// An authenticated raw peer (it holds the cluster's keys) without the cluster id, then with it
// sending truncated, lying, unknown-table and over-limit requests: each gets a refusal (the
// first a bare "rejected" that never names the cluster id), and the server process goes on
// serving what a real worker trains.
TEST_F(ClusterTest, AHostilePeerIsRefusedEachTimeAndTheServerKeepsServing) {
  StartScheduler(1, 1);
  auto server = StartNode("granary_server", "server", {"--max_request_keys=1000"});
  zmq::context_t context(1);
  SchedulerClient client(&context, ClientOptions(proto::WORKER));
  ASSERT_TRUE(client.Register().ok());
  zmq::socket_t raw = ConnectRawToServer(context, client, keys_);
  // Sends a request of `keys` keys (declaring `key_bytes`, or their true size if negative) and
  // `floats` values; returns the raw reply bytes.
  auto send = [&](proto::Header header, size_t keys, size_t floats, int64_t key_bytes = -1) {
    header.set_key_bytes(key_bytes < 0 ? keys * 8 : key_bytes);
    header.set_value_bytes(floats * 4);
    std::vector<zmq::message_t> frames;
    frames.emplace_back(header.SerializeAsString());
    std::vector<uint64_t> key_data(keys);
    for (size_t i = 0; i < keys; ++i) key_data[i] = FeatureKey("f", absl::StrCat(i));
    frames.emplace_back(key_data.data(), keys * 8);
    frames.emplace_back(std::vector<float>(floats, 1.0f).data(), floats * 4);
    zmq::send_multipart(raw, frames);
    zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
    std::vector<zmq::message_t> received;
    if (zmq::poll(&item, 1, std::chrono::seconds(10)) <= 0) return std::string("no reply");
    if (!zmq::recv_multipart(raw, std::back_inserter(received))) return std::string("no reply");
    return received[0].to_string();
  };
  auto request = [&](proto::Command command, const std::string& table) {
    proto::Header header = MakeHeader(command, cluster_id_, proto::WORKER, 0);
    header.set_request_id(7);
    header.set_table(table);
    header.set_shard_map_version(client.view().shard_map().version());
    header.set_sender_incarnation(client.view().you().incarnation());
    return header;
  };
  auto error_of = [](const std::string& bytes) {
    proto::Header reply;
    if (!reply.ParseFromString(bytes) || reply.command() != proto::ERROR_REPLY) return bytes;
    return reply.error();
  };

  proto::Header guess = request(proto::PULL, "demo");
  guess.set_cluster_id("guess");
  for (int i = 0; i < 3; ++i) {
    const std::string bytes = send(guess, 2, 0);
    EXPECT_EQ(bytes.find(cluster_id_), std::string::npos) << "the reply reveals the cluster id";
    EXPECT_EQ(error_of(bytes), kRejectedText);
  }
  EXPECT_NE(
      error_of(send(request(proto::PUSH, "demo"), 2, 8, /*key_bytes=*/8)).find("do not match"),
      std::string::npos);  // truncated
  EXPECT_NE(error_of(send(request(proto::PUSH, "demo"), 2, 3)).find("expected 64"),
            std::string::npos);  // key count vs. value bytes
  EXPECT_NE(error_of(send(request(proto::PULL, "nope"), 2, 0)).find("unknown table 'nope'"),
            std::string::npos);
  const std::string over = error_of(send(request(proto::PULL, "demo"), 1001, 0));
  EXPECT_NE(over.find("--max_request_keys"), std::string::npos) << over;
  EXPECT_NE(over.find("table 'demo'"), std::string::npos) << over;

  KVWorkerOptions options;
  options.cluster_id = cluster_id_;
  options.request_timeout = absl::Seconds(20);
  options.curve = keys_;
  KVWorker worker(&context, client.view(), options);
  ASSERT_TRUE(worker.Start().ok());
  std::vector<uint64_t> keys(1000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = FeatureKey("g", absl::StrCat(i));
  std::vector<float> grads(keys.size() * 8, 2.0f);
  ASSERT_TRUE(worker.Wait(worker.Push("demo", keys, grads)).ok());  // at the limit: served
  std::vector<float> rows;
  ASSERT_TRUE(worker.Wait(worker.Pull("demo", keys, &rows)).ok());
  ASSERT_EQ(rows.size(), keys.size() * 8);
  for (float v : rows) EXPECT_EQ(v, -1.0f);  // lr 0.5 x grad 2: only the real push applied

  client.ReportJobDone();
  EXPECT_TRUE(client.WaitForShutdown(absl::Seconds(20)).ok());
  ExpectExitsWith(*server, 0);
  ExpectExitsWith(*scheduler_, 0);
  const std::string log = server->ReadLog();
  size_t logged = 0;
  for (size_t at = log.find("rejected a message from 127.0.0.1"); at != std::string::npos;
       at = log.find("rejected a message from 127.0.0.1", at + 1)) {
    ++logged;
  }
  EXPECT_EQ(logged, 1u) << "three rejections of one peer, logged once";
}

TEST_F(ClusterTest, ClusterThatNeverFormsFailsNamingWhoIsMissing) {
  StartScheduler(2, 1, {"--register_timeout=1"});
  auto server = StartNode("granary_server", "server", {"--register_timeout=20"});
  ExpectExitsWith(*scheduler_, 1);
  EXPECT_NE(scheduler_->ReadLog().find("have 1 of 2 servers and 0 of 1 workers"), std::string::npos)
      << scheduler_->ReadLog();
  // The server that did come is told, and fails instead of waiting forever.
  ExpectExitsWith(*server, 1);
  EXPECT_NE(server->ReadLog().find("cluster did not form"), std::string::npos) << server->ReadLog();
}

TEST_F(ClusterTest, SigtermToTheSchedulerShutsTheClusterDownInOrder) {
  StartScheduler(1, 1);
  auto server = StartNode("granary_server", "server");
  auto worker = StartNode("granary_worker", "worker", {"--job=idle"});
  ASSERT_TRUE(
      WaitUntil([&] { return scheduler_->ReadLog().find("cluster formed") != std::string::npos; },
                kStartTimeout));
  scheduler_->Signal(SIGTERM);
  ExpectExitsWith(*scheduler_, 0);
  ExpectExitsWith(*server, 0);
  ExpectExitsWith(*worker, 0);
  EXPECT_NE(scheduler_->ReadLog().find("stop requested"), std::string::npos);
}

// Authentication is off only when asked for: a role without keys refuses to start.
TEST_F(ClusterTest, ARoleWithoutKeysOrTheInsecureFlagRefusesToStartNamingKeysDir) {
  auto scheduler = Start({kBin + "/granary_scheduler", "--config=" + kDemoConfig}, "scheduler");
  ExpectExitsWith(*scheduler, 1);
  EXPECT_NE(scheduler->ReadLog().find("--keys_dir is required"), std::string::npos)
      << scheduler->ReadLog();
  auto server = Start({kBin + "/granary_server", "--scheduler=127.0.0.1:1"}, "server");
  ExpectExitsWith(*server, 1);
  EXPECT_NE(server->ReadLog().find("--keys_dir is required"), std::string::npos)
      << server->ReadLog();
}

TEST_F(ClusterTest, BadConfigIsReportedWithFileAndLine) {
  std::string config = run_dir_ + "/bad.pbtxt";
  std::ofstream(config) << "tables {\n  name: \"x\"\n  dim: 4\n  optimiser { }\n}\n";
  auto scheduler = Start({kBin + "/granary_scheduler", "--config=" + config}, "scheduler");
  ExpectExitsWith(*scheduler, 1);
  EXPECT_NE(scheduler->ReadLog().find(config + ":4:"), std::string::npos) << scheduler->ReadLog();
}

}  // namespace
}  // namespace granary
