// End-to-end tests of real granary_* processes on 127.0.0.1. Every port is picked free by the
// processes themselves (port 0; the scheduler publishes its address in a file), every wait is
// bounded, and every process is killed by pid when a test ends.
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/curve_keys.h"
#include "common/feature_key.h"
#include "common/message.h"
#include "common/scheduler_client.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/curve_router.h"
#include "tests/testing/sanitizer.h"
#include "tests/testing/synthetic_clicks.h"
#include "tests/testing/temp_dir.h"
#include "worker/kv_worker.h"

namespace granary {
namespace {

const std::string kBin = GRANARY_BINARY_DIR;
const std::string kDemoConfig = std::string(GRANARY_SOURCE_DIR) + "/configs/demo.pbtxt";
constexpr absl::Duration kStartTimeout = absl::Seconds(20);
// A process's exit after its work (longer under a sanitizer: tests/testing/sanitizer.h).
constexpr absl::Duration kExitTimeout = absl::Seconds(60 * kSanitizerSlowdown);

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

  // The run folder holds the servers' ipc folders (their TMPDIR, tests/testing/child_process.h)
  // and RocksDB tables: it goes with the test, unless the test failed and its logs may tell why.
  void TearDown() override {
    scheduler_.reset();
    RemoveTempDirUnlessFailed(run_dir_);
  }

  // Starts the scheduler and waits until it published its address.
  void StartScheduler(int servers, int workers, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kBin + "/granary_scheduler",
                                     "--config=" + config_,
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

  std::string config_ = kDemoConfig;  // the scheduler's cluster config
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

// The hostile peer of DESIGN.md "Trust boundary", against a cluster that trains: a real
// granary_worker runs a training job while, against the server and then the scheduler, come a
// plain ZeroMQ client without CURVE, a CURVE client with another server key, one with a keypair
// of its own, and an authenticated raw client with a wrong cluster id and with oversized,
// truncated, lying, unknown-table and huge-dim requests. Each gets nothing or a refusal that
// never names the cluster id; each address is logged once; the job finishes with the model it
// would have trained anyway, and the server's memory stays under its bound.
TEST_F(ClusterTest, AHostilePeerIsRefusedEachTimeWhileTheClusterTrains) {
  // Training long enough to outlast the attacks (about 12 s): kCopies times the synthetic
  // clicks, kEpochs epochs (a 40,000-sample epoch took 1.2 s on a busy machine: 30-50 s).
  constexpr int kCopies = 10;
  constexpr int kEpochs = 16;
  // Connections an outsider tries until the process it tries names it in its log.
  constexpr int kMaxAttempts = 10;
  WriteSyntheticClicksRun(run_dir_, kCopies, kEpochs);
  config_ = run_dir_ + "/cluster.pbtxt";

  // Limits small enough that a request past them would show in the server's memory, large
  // enough for the job's own requests (a batch of 32 samples pulls a few hundred rows).
  constexpr size_t kMaxRequestKeys = 16384;
  constexpr size_t kMaxRequestBytes = size_t{1} << 20;
  constexpr size_t kCacheBytes = size_t{16} << 20;
  StartScheduler(1, 1);
  auto server = StartNode("granary_server", "server",
                          {absl::StrCat("--max_request_keys=", kMaxRequestKeys),
                           absl::StrCat("--max_request_bytes=", kMaxRequestBytes),
                           absl::StrCat("--cache_bytes=", kCacheBytes)});
  auto worker = StartNode("granary_worker", "worker",
                          {"--job=train", "--job_config=" + run_dir_ + "/job.pbtxt",
                           "--data_dir=" + run_dir_, "--output_dir=" + run_dir_ + "/out"});
  ASSERT_NE(server, nullptr);
  ASSERT_NE(worker, nullptr);
  // `match` points into `server_log`, which must outlive it.
  std::string server_log;
  std::smatch match;
  const std::regex registered(R"(registered as server 0 \(([0-9.]+):([0-9]+), pid)");
  ASSERT_TRUE(WaitUntil(
      [&] {
        server_log = server->ReadLog();
        return std::regex_search(server_log, match, registered);
      },
      kStartTimeout))
      << server->ReadLog();
  const std::string server_endpoint = TcpEndpoint(match[1], std::stoi(match[2]));
  const std::string scheduler_endpoint = "tcp://" + address_;
  // The attacks begin once the worker trains.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return std::regex_search(scheduler_->ReadLog(),
                                 std::regex("chunk [0-9]+ of queue 'train-epoch-1': [0-9]+ "
                                            "samples trained"));
      },
      kStartTimeout))
      << scheduler_->ReadLog();

  zmq::context_t context(1);
  // Sends `frames` from a DEALER configured by `configure`, connecting from `source_ip`, and
  // returns the first frame of the reply, or "no reply" after `wait`.
  auto exchange = [&](const std::string& endpoint, const std::string& source_ip,
                      const std::function<void(zmq::socket_t&)>& configure,
                      std::vector<zmq::message_t> frames, std::chrono::milliseconds wait) {
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    ConfigureSocket(dealer);
    configure(dealer);
    dealer.connect(absl::StrCat("tcp://", source_ip, ":0;", absl::StripPrefix(endpoint, "tcp://")));
    zmq::send_multipart(dealer, frames);
    zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
    std::vector<zmq::message_t> reply;
    if (zmq::poll(&item, 1, wait) <= 0) return std::string("no reply");
    if (!zmq::recv_multipart(dealer, std::back_inserter(reply))) return std::string("no reply");
    return reply[0].to_string();
  };
  // Loopback addresses the attackers connect from, so that each one's log line can be found;
  // the cluster's own processes use 127.0.0.1.
  const std::string kPlain = "127.0.0.2", kOtherServerKey = "127.0.0.3", kOwnKeypair = "127.0.0.4",
                    kMember = "127.0.0.5";
  const CurveKeys stranger = *GenerateCurveKeys();
  auto plain = [](zmq::socket_t&) {};
  auto other_server_key = [&](zmq::socket_t& dealer) {
    dealer.set(zmq::sockopt::curve_serverkey, stranger.public_key);
    dealer.set(zmq::sockopt::curve_publickey, keys_.public_key);
    dealer.set(zmq::sockopt::curve_secretkey, keys_.secret_key);
  };
  auto own_keypair = [&](zmq::socket_t& dealer) {
    dealer.set(zmq::sockopt::curve_serverkey, keys_.public_key);
    dealer.set(zmq::sockopt::curve_publickey, stranger.public_key);
    dealer.set(zmq::sockopt::curve_secretkey, stranger.secret_key);
  };
  auto member = [&](zmq::socket_t& dealer) { ConfigureCurveClient(dealer, keys_); };
  // A request as a peer lying about being server 0 would send it (no worker incarnation to
  // fence), with `keys` keys (declaring `key_bytes`, or their true size if negative) and
  // `floats` values (declaring `value_bytes`, or their true size if negative).
  auto request = [&](proto::Command command, const std::string& table, size_t keys, size_t floats,
                     int64_t key_bytes = -1, int64_t value_bytes = -1) {
    proto::Header header = MakeHeader(command, cluster_id_, proto::SERVER, 0);
    header.set_request_id(7);
    header.set_table(table);
    header.set_shard_map_version(1);  // the scheduler's first shard map (membership.cc)
    header.set_key_bytes(key_bytes < 0 ? keys * sizeof(uint64_t) : key_bytes);
    header.set_value_bytes(value_bytes < 0 ? floats * sizeof(float) : value_bytes);
    std::vector<zmq::message_t> frames;
    frames.emplace_back(header.SerializeAsString());
    std::vector<uint64_t> key_data(keys);
    for (size_t i = 0; i < keys; ++i) key_data[i] = FeatureKey("hostile", absl::StrCat(i));
    frames.emplace_back(key_data.data(), keys * sizeof(uint64_t));
    frames.emplace_back(std::vector<float>(floats, 1.0f).data(), floats * sizeof(float));
    return frames;
  };
  auto error_of = [](const std::string& bytes) {
    proto::Header reply;
    if (!reply.ParseFromString(bytes) || reply.command() != proto::ERROR_REPLY) return bytes;
    return reply.error();
  };
  // A member's request (it knows the cluster id: the reply may name it) to the server.
  auto ask_server = [&](std::vector<zmq::message_t> frames) {
    return error_of(
        exchange(server_endpoint, kMember, member, std::move(frames), std::chrono::seconds(20)));
  };
  auto anything = [&](const std::string& text) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(text);
    return frames;
  };

  const std::vector<std::pair<std::string, std::function<void(zmq::socket_t&)>>> outsiders = {
      {kPlain, plain}, {kOtherServerKey, other_server_key}, {kOwnKeypair, own_keypair}};
  for (const auto& [endpoint, process] : {std::pair(server_endpoint, server.get()),
                                          std::pair(scheduler_endpoint, scheduler_.get())}) {
    SCOPED_TRACE(endpoint);
    for (const auto& [address, configure] : outsiders) {
      // Until its address is logged (a connection closed before the process looked up its
      // address is logged as "unknown address"), then once more, from another source port:
      // that one is not logged again (checked at the end).
      int attempts = 0;
      do {
        EXPECT_EQ(exchange(endpoint, address, configure, anything("SHUTDOWN"), kSilenceWait),
                  "no reply")
            << address;
      } while (!absl::StrContains(process->ReadLog(),
                                  absl::StrCat("rejected a peer at ", address, ": ")) &&
               ++attempts < kMaxAttempts);
      EXPECT_EQ(exchange(endpoint, address, configure, anything("SHUTDOWN"), kSilenceWait),
                "no reply")
          << address;
    }
    // A member that does not know the cluster id learns nothing, and stops nothing.
    std::vector<zmq::message_t> shutdown = request(proto::SHUTDOWN, "", 0, 0);
    proto::Header guess;
    ASSERT_TRUE(guess.ParseFromArray(shutdown[0].data(), static_cast<int>(shutdown[0].size())));
    guess.set_cluster_id("guess");
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::vector<zmq::message_t> frames;
      frames.emplace_back(guess.SerializeAsString());
      const std::string reply =
          exchange(endpoint, kMember, member, std::move(frames), std::chrono::seconds(20));
      EXPECT_EQ(reply.find(cluster_id_), std::string::npos) << "the reply reveals the cluster id";
      EXPECT_EQ(error_of(reply), kRejectedText);
    }
  }
  // Requests of a member that lies, each refused naming the limit or the table.
  const std::string too_many = ask_server(request(proto::PULL, "emb", kMaxRequestKeys + 1, 0));
  EXPECT_NE(too_many.find("--max_request_keys"), std::string::npos) << too_many;
  EXPECT_NE(too_many.find("table 'emb'"), std::string::npos) << too_many;
  // Without the key limit this PULL would make and return a million rows.
  constexpr size_t kHugePullKeys = size_t{1} << 20;
  const std::string huge_pull = ask_server(request(proto::PULL, "emb", kHugePullKeys, 0));
  EXPECT_NE(huge_pull.find("--max_request_keys"), std::string::npos) << huge_pull;
  // Under the key limit, over the byte limit: 4,000 rows of the 64-wide dense table.
  const std::string too_big = ask_server(request(proto::PULL, "dense", 4000, 0));
  EXPECT_NE(too_big.find("--max_request_bytes"), std::string::npos) << too_big;
  EXPECT_NE(too_big.find("table 'dense'"), std::string::npos) << too_big;
  const std::string truncated = ask_server(request(proto::PUSH, "emb", 2, 16, /*key_bytes=*/8));
  EXPECT_NE(truncated.find("do not match"), std::string::npos) << truncated;
  const std::string lying = ask_server(request(proto::PUSH, "emb", 2, 3));
  EXPECT_NE(lying.find("expected 64"), std::string::npos) << lying;
  const std::string unknown = ask_server(request(proto::PULL, "nope", 2, 0));
  EXPECT_NE(unknown.find("unknown table 'nope'"), std::string::npos) << unknown;
  // Huge dim: values of one key declared as 2^31 floats, then a million floats sent for it.
  const std::string claimed = ask_server(
      request(proto::PUSH, "emb", 1, 8, -1, /*value_bytes=*/(int64_t{1} << 31) * sizeof(float)));
  EXPECT_NE(claimed.find("do not match"), std::string::npos) << claimed;
  const std::string huge_dim = ask_server(request(proto::PUSH, "emb", 1, size_t{1} << 20));
  EXPECT_NE(huge_dim.find("table 'emb' (dim 8)"), std::string::npos) << huge_dim;
  EXPECT_NE(huge_dim.find("expected 32"), std::string::npos) << huge_dim;

  // The server's peak memory, read while it still runs. Its bound: the row cache budget, the
  // largest attack message held twice (received, and copied or answered: 2 x 8 MiB for the
  // million-key PULL) and 32 MiB for the rest (code, RocksDB, threads and the job's own
  // requests; the whole peak was 36 MiB here). Served, the million-key PULL (its reply and its
  // new rows) took the peak to 142 MiB (measured with both limits raised).
  constexpr size_t kLargestAttackBytes = kHugePullKeys * sizeof(uint64_t);
  constexpr size_t kServerMemoryBound = kCacheBytes + 2 * kLargestAttackBytes + (size_t{32} << 20);
  std::smatch hwm;
  const std::string status = ReadFile(absl::StrCat("/proc/", server->pid(), "/status"));
  ASSERT_TRUE(std::regex_search(status, hwm, std::regex(R"(VmHWM:\s*([0-9]+) kB)"))) << status;
  const size_t server_peak = std::stoull(hwm[1]) << 10;
  std::cout << "server peak memory (VmHWM) " << (server_peak >> 20) << " MiB, bound "
            << (kServerMemoryBound >> 20) << " MiB\n";
  // Under a sanitizer the server's shadow memory and quarantine make the bound meaningless;
  // everything else of the test still applies there.
  if (!kUnderSanitizer) {
    EXPECT_LT(server_peak, kServerMemoryBound);
  }

  ASSERT_FALSE(worker->WaitForExit(absl::ZeroDuration()).has_value())
      << "the job ended during the attacks: the test proves nothing\n"
      << worker->ReadLog();
  ExpectExitsWith(*worker, 0);
  ExpectExitsWith(*server, 0);
  ExpectExitsWith(*scheduler_, 0);

  // The job trained what it would have without the attacks: every epoch, to a click AUC the
  // synthetic data allows (tests/testing/synthetic_clicks.h).
  std::ifstream metrics(run_dir_ + "/out/out/metrics.jsonl");
  std::string line, last;
  int epochs = 0;
  while (std::getline(metrics, line)) {
    ++epochs;
    last = line;
  }
  EXPECT_EQ(epochs, kEpochs);
  std::smatch auc;
  ASSERT_TRUE(
      std::regex_search(last, auc, std::regex(R"("click": \{"count": [0-9]+, "auc": ([0-9.]+))")))
      << last;
  EXPECT_GE(std::stod(auc[1]), 0.75) << last;

  // Each refused address is logged once by the process it tried, however often it tried.
  auto lines_naming = [](const std::string& log, const std::string& what) {
    int lines = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) {
      ++lines;
    }
    return lines;
  };
  for (ChildProcess* process : {server.get(), scheduler_.get()}) {
    const std::string log = process->ReadLog();
    for (const std::string& address : {kPlain, kOtherServerKey, kOwnKeypair}) {
      EXPECT_EQ(lines_naming(log, absl::StrCat("rejected a peer at ", address, ": ")), 1)
          << address << " in " << process->log_path() << ":\n"
          << log;
    }
    EXPECT_EQ(lines_naming(log, absl::StrCat("rejected a message from ", kMember, ": ")), 1)
        << process->log_path() << ":\n"
        << log;
    EXPECT_EQ(log.find("rejected a peer at 127.0.0.1:"), std::string::npos) << log;
  }
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
