#include "ps/server.h"

#include <atomic>
#include <limits>
#include <numeric>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/fast_scheduler.h"
#include "tests/testing/in_process_cluster.h"

namespace granary {
namespace {

constexpr char kCluster[] = "server-test";

// Talks to server 0 of an in-process cluster over a raw DEALER socket, as a buggy or hostile
// peer would.
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InProcessClusterOptions options;
    options.num_servers = 2;
    options.num_workers = 1;
    options.cluster_id = kCluster;
    options.config = SgdTablesConfig({{"emb", 2}}, 1.0f);
    Customize(&options);
    cluster_ = std::make_unique<InProcessCluster>(options);
    ASSERT_TRUE(cluster_->Start().ok());
    for (const proto::NodeInfo& node : cluster_->worker_client(0).view().nodes()) {
      if (node.role() == proto::SERVER && node.rank() == 0) server0_ = node;
    }
    raw_ = std::make_unique<zmq::socket_t>(cluster_->context(), zmq::socket_type::dealer);
    ConfigureSocket(*raw_);
    raw_->connect(TcpEndpoint(server0_.host(), server0_.port()));
  }

  // Lets a derived fixture change the cluster's options.
  virtual void Customize(InProcessClusterOptions*) {}

  // Sends raw frames and returns the decoded reply; fails the test after 10 s.
  Message RoundTrip(std::vector<zmq::message_t> frames) {
    zmq::send_multipart(*raw_, frames);
    zmq::pollitem_t item{raw_->handle(), 0, ZMQ_POLLIN, 0};
    Message reply;
    if (zmq::poll(&item, 1, std::chrono::seconds(10)) <= 0) {
      ADD_FAILURE() << "no reply within 10 s";
      return reply;
    }
    std::vector<zmq::message_t> received;
    EXPECT_TRUE(zmq::recv_multipart(*raw_, std::back_inserter(received)));
    absl::Status status = DecodeMessage(std::move(received), kCluster, "server 0", &reply);
    EXPECT_TRUE(status.ok()) << status;
    return reply;
  }

  proto::Header Request(proto::Command command) {
    proto::Header header;
    header.set_cluster_id(kCluster);
    header.set_sender_role(proto::WORKER);
    header.set_sender_rank(5);
    header.set_request_id(99);
    header.set_command(command);
    header.set_table("emb");
    header.set_shard_map_version(1);
    return header;
  }

  static std::vector<zmq::message_t> DataFrames(proto::Header header,
                                                const std::vector<uint64_t>& keys,
                                                const std::vector<float>& values) {
    header.set_key_bytes(keys.size() * 8);
    header.set_value_bytes(values.size() * 4);
    std::vector<zmq::message_t> frames;
    frames.emplace_back(header.SerializeAsString());
    frames.emplace_back(keys.data(), keys.size() * 8);
    frames.emplace_back(values.data(), values.size() * 4);
    return frames;
  }

  // Pushes `grads` for `keys`, expecting a PUSH_REPLY, then pulls them back and returns the
  // pulled rows, expecting as many as the gradients.
  std::vector<float> PushThenPull(const std::vector<uint64_t>& keys,
                                  const std::vector<float>& grads) {
    Message pushed = RoundTrip(DataFrames(Request(proto::PUSH), keys, grads));
    EXPECT_EQ(pushed.header.command(), proto::PUSH_REPLY) << pushed.header.error();
    Message pulled = RoundTrip(DataFrames(Request(proto::PULL), keys, {}));
    EXPECT_EQ(pulled.header.command(), proto::PULL_REPLY) << pulled.header.error();
    FrameArray<float> rows(pulled.values);
    EXPECT_EQ(rows.size(), grads.size());
    return std::vector<float>(rows.span().begin(), rows.span().end());
  }

  // The server still serves a correct pull of key 1 (owned by server 0).
  void ExpectStillServing() {
    Message reply = RoundTrip(DataFrames(Request(proto::PULL), {1}, {}));
    EXPECT_EQ(reply.header.command(), proto::PULL_REPLY) << reply.header.error();
    EXPECT_EQ(reply.values.size(), 2 * sizeof(float));
  }

  std::unique_ptr<InProcessCluster> cluster_;
  proto::NodeInfo server0_;
  std::unique_ptr<zmq::socket_t> raw_;
};

TEST_F(ServerTest, GarbageGetsAnErrorReplyAndServingContinues) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(std::string("not a protobuf \xff\xfe"));
  frames.emplace_back(std::string("junk"));
  // The rejection echoes no cluster id (the garbage had none), so it is read raw.
  zmq::send_multipart(*raw_, frames);
  zmq::pollitem_t item{raw_->handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_GT(zmq::poll(&item, 1, std::chrono::seconds(10)), 0);
  std::vector<zmq::message_t> received;
  ASSERT_TRUE(zmq::recv_multipart(*raw_, std::back_inserter(received)));
  proto::Header reply;
  ASSERT_TRUE(reply.ParseFromString(received[0].to_string()));
  EXPECT_EQ(reply.command(), proto::ERROR_REPLY);
  EXPECT_EQ(reply.error(), kRejectedText);  // the reason is only in the server's log
  EXPECT_EQ(reply.cluster_id(), "");
  ExpectStillServing();
}

TEST_F(ServerTest, TruncatedValuesAreRejectedNamingTheSender) {
  std::vector<zmq::message_t> frames = DataFrames(Request(proto::PUSH), {1, 2}, {1, 2, 3, 4});
  frames[2] = zmq::message_t(std::string("abc"));  // header still says 16 bytes
  Message reply = RoundTrip(std::move(frames));
  EXPECT_EQ(reply.header.command(), proto::ERROR_REPLY);
  EXPECT_EQ(reply.header.request_id(), 99u);
  EXPECT_NE(reply.header.error().find("worker 5"), std::string::npos) << reply.header.error();
  ExpectStillServing();
}

TEST_F(ServerTest, WrongDimKeyOutsideRangeStaleMapAndUnknownTableAreRejected) {
  Message wrong_dim = RoundTrip(DataFrames(Request(proto::PUSH), {1, 2}, {1, 2, 3}));
  EXPECT_EQ(wrong_dim.header.command(), proto::ERROR_REPLY);
  EXPECT_NE(wrong_dim.header.error().find("expected 16"), std::string::npos)
      << wrong_dim.header.error();

  Message outside = RoundTrip(DataFrames(Request(proto::PULL), {1, ~0ULL}, {}));
  EXPECT_EQ(outside.header.command(), proto::ERROR_REPLY);
  EXPECT_NE(outside.header.error().find("0xffffffffffffffff"), std::string::npos)
      << outside.header.error();
  EXPECT_NE(outside.header.error().find("outside the ranges of server 0"), std::string::npos);

  proto::Header stale = Request(proto::PULL);
  stale.set_shard_map_version(7);
  Message stale_reply = RoundTrip(DataFrames(stale, {1}, {}));
  EXPECT_EQ(stale_reply.header.command(), proto::ERROR_REPLY);
  EXPECT_NE(stale_reply.header.error().find("shard map version 7"), std::string::npos);

  proto::Header unknown = Request(proto::PULL);
  unknown.set_table("missing");
  Message unknown_reply = RoundTrip(DataFrames(unknown, {1}, {}));
  EXPECT_EQ(unknown_reply.header.command(), proto::ERROR_REPLY);
  EXPECT_NE(unknown_reply.header.error().find("unknown table 'missing'"), std::string::npos);

  proto::Header wrong_cluster = Request(proto::PULL);
  wrong_cluster.set_cluster_id("intruder");
  std::vector<zmq::message_t> frames = DataFrames(wrong_cluster, {1}, {});
  zmq::send_multipart(*raw_, frames);
  zmq::pollitem_t item{raw_->handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_GT(zmq::poll(&item, 1, std::chrono::seconds(10)), 0);
  std::vector<zmq::message_t> received;
  ASSERT_TRUE(zmq::recv_multipart(*raw_, std::back_inserter(received)));
  const std::string bytes = received[0].to_string();
  EXPECT_EQ(bytes.find(kCluster), std::string::npos) << "the reply reveals the cluster id";
  proto::Header error;
  ASSERT_TRUE(error.ParseFromString(bytes));
  EXPECT_EQ(error.command(), proto::ERROR_REPLY);
  EXPECT_EQ(error.error(), kRejectedText);
  EXPECT_EQ(error.cluster_id(), "intruder");
  EXPECT_EQ(error.request_id(), 99u);

  ExpectStillServing();
  EXPECT_EQ(cluster_->server(0).catalog()->Find("emb")->stats().cached_rows,
            1u);  // only ExpectStillServing's row
}

// Limits small enough that a test crosses them with a handful of keys (table "emb" has dim 2,
// so a key costs 8 + 2 x 4 = 16 bytes).
class LimitedServerTest : public ServerTest {
 protected:
  static constexpr size_t kMaxKeys = 100;
  static constexpr size_t kMaxBytes = 50 * 16;
  void Customize(InProcessClusterOptions* options) override {
    options->server_max_request_keys = kMaxKeys;
    options->server_max_request_bytes = kMaxBytes;
  }
};

TEST_F(LimitedServerTest, RequestsOverTheKeyOrByteLimitGetAnErrorNamingLimitAndTable) {
  std::vector<uint64_t> keys(kMaxKeys + 1);
  std::iota(keys.begin(), keys.end(), 1);  // key 1 up: inside server 0's range
  Message too_many = RoundTrip(DataFrames(Request(proto::PULL), keys, {}));
  EXPECT_EQ(too_many.header.command(), proto::ERROR_REPLY);
  EXPECT_EQ(too_many.header.request_id(), 99u);
  EXPECT_NE(too_many.header.error().find("--max_request_keys"), std::string::npos)
      << too_many.header.error();
  EXPECT_NE(too_many.header.error().find("table 'emb'"), std::string::npos)
      << too_many.header.error();

  keys.resize(kMaxBytes / 16 + 1);  // under the key limit, over the byte limit
  Message too_big =
      RoundTrip(DataFrames(Request(proto::PUSH), keys, std::vector<float>(keys.size() * 2, 1)));
  EXPECT_EQ(too_big.header.command(), proto::ERROR_REPLY);
  EXPECT_NE(too_big.header.error().find("--max_request_bytes"), std::string::npos)
      << too_big.header.error();
  EXPECT_NE(too_big.header.error().find("table 'emb'"), std::string::npos)
      << too_big.header.error();

  keys.resize(kMaxBytes / 16);  // exactly at both limits: served
  Message at_limit = RoundTrip(DataFrames(Request(proto::PULL), keys, {}));
  EXPECT_EQ(at_limit.header.command(), proto::PULL_REPLY) << at_limit.header.error();
  EXPECT_EQ(at_limit.values.size(), keys.size() * 2 * sizeof(float));
  // Nothing of the refused push was applied: its keys hold their initial rows, which the
  // at-limit pull created (only key 1 of ExpectStillServing's and these).
  ExpectStillServing();
  EXPECT_EQ(cluster_->server(0).catalog()->Find("emb")->stats().cached_rows, keys.size());
}

class PeerLimitedServerTest : public ServerTest {
 protected:
  static constexpr int kMaxInFlight = 1;
  void Customize(InProcessClusterOptions* options) override {
    options->server_max_requests_per_peer = kMaxInFlight;
  }
};

TEST_F(PeerLimitedServerTest, RequestsOverThePeerLimitAreRefusedAndEveryOneIsAnswered) {
  // Pulls big enough for the handler threads (not served inline), all sent at once: while the
  // first is in flight the next ones from this connection are over the limit.
  constexpr int kRequests = 50;
  std::vector<uint64_t> keys(20000);
  std::iota(keys.begin(), keys.end(), 1);
  for (int i = 0; i < kRequests; ++i) {
    std::vector<zmq::message_t> frames = DataFrames(Request(proto::PULL), keys, {});
    zmq::send_multipart(*raw_, frames);
  }
  int served = 0;
  int refused = 0;
  zmq::pollitem_t item{raw_->handle(), 0, ZMQ_POLLIN, 0};
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_GT(zmq::poll(&item, 1, std::chrono::seconds(10)), 0) << "reply " << i << " missing";
    std::vector<zmq::message_t> received;
    ASSERT_TRUE(zmq::recv_multipart(*raw_, std::back_inserter(received)));
    Message reply;
    ASSERT_TRUE(DecodeMessage(std::move(received), kCluster, "server 0", &reply).ok());
    if (reply.header.command() == proto::PULL_REPLY) {
      EXPECT_EQ(reply.values.size(), keys.size() * 2 * sizeof(float));
      ++served;
    } else {
      EXPECT_NE(reply.header.error().find("--max_requests_per_peer"), std::string::npos)
          << reply.header.error();
      ++refused;
    }
  }
  EXPECT_GE(served, 1);
  EXPECT_GE(refused, 1);
  ExpectStillServing();
  // Once the in-flight one is answered, the connection may send again.
  Message again = RoundTrip(DataFrames(Request(proto::PULL), keys, {}));
  EXPECT_EQ(again.header.command(), proto::PULL_REPLY) << again.header.error();
}

TEST_F(ServerTest, APushWithANonFiniteGradientIsRefusedWholeNamingTableKeyAndSender) {
  Message before = RoundTrip(DataFrames(Request(proto::PULL), {1, 2}, {}));
  ASSERT_EQ(before.header.command(), proto::PULL_REPLY) << before.header.error();
  const std::vector<float> initial(FrameArray<float>(before.values).span().begin(),
                                   FrameArray<float>(before.values).span().end());
  const float kInf = std::numeric_limits<float>::infinity();
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (const std::vector<float>& grads :
       {std::vector<float>{1, 2, 3, kNaN}, std::vector<float>{1, 2, -kInf, 4}}) {
    Message reply = RoundTrip(DataFrames(Request(proto::PUSH), {1, 2}, grads));
    EXPECT_EQ(reply.header.command(), proto::ERROR_REPLY);
    EXPECT_EQ(reply.header.request_id(), 99u);
    const std::string& error = reply.header.error();
    EXPECT_NE(error.find("table 'emb'"), std::string::npos) << error;
    EXPECT_NE(error.find("non-finite gradient"), std::string::npos) << error;
    EXPECT_NE(error.find("key 0x0000000000000002"), std::string::npos) << error;
    EXPECT_NE(error.find("worker 5"), std::string::npos) << error;
  }
  EXPECT_EQ(cluster_->server(0).non_finite_pushes(), 2u);
  // Nothing of either push was applied, not even key 1's finite gradient.
  Message after = RoundTrip(DataFrames(Request(proto::PULL), {1, 2}, {}));
  ASSERT_EQ(after.header.command(), proto::PULL_REPLY) << after.header.error();
  FrameArray<float> values(after.values);
  EXPECT_EQ(std::vector<float>(values.span().begin(), values.span().end()), initial);
  // A finite push is still applied (SGD, learning rate 1).
  Message pushed = RoundTrip(DataFrames(Request(proto::PUSH), {1, 2}, {1, 1, 1, 1}));
  EXPECT_EQ(pushed.header.command(), proto::PUSH_REPLY) << pushed.header.error();
  Message last = RoundTrip(DataFrames(Request(proto::PULL), {1}, {}));
  EXPECT_EQ(FrameArray<float>(last.values).span()[0], initial[0] - 1);
}

// Fencing: requests of a worker incarnation declared dead are refused and change nothing; a
// higher incarnation of the rank (a replacement) is accepted, and fences the older ones.
TEST_F(ServerTest, AFencedWorkerIncarnationIsRefusedAndAHigherOneAccepted) {
  const proto::NodeInfo& worker = cluster_->worker_client(0).view().you();
  ASSERT_GT(worker.incarnation(), 0u);
  auto from = [&](proto::Command command, uint64_t incarnation) {
    proto::Header header = Request(command);
    header.set_sender_rank(worker.rank());
    header.set_sender_incarnation(incarnation);
    return header;
  };
  auto pull = [&](uint64_t incarnation) {
    Message reply = RoundTrip(DataFrames(from(proto::PULL, incarnation), {1}, {}));
    EXPECT_EQ(reply.header.command(), proto::PULL_REPLY) << reply.header.error();
    return FrameArray<float>(reply.values).span()[0];
  };
  const uint64_t alive = worker.incarnation();
  const float initial = pull(alive);
  // An incarnation older than the view's was never this rank's current one.
  Message stale = RoundTrip(DataFrames(from(proto::PUSH, alive - 1), {1}, {1, 1}));
  EXPECT_EQ(stale.header.command(), proto::ERROR_REPLY);

  cluster_->server(0).FenceWorker(worker.rank(), alive);  // the scheduler's NODE_DEAD
  for (proto::Command command : {proto::PUSH, proto::PULL}) {
    Message refused = RoundTrip(
        DataFrames(from(command, alive), {1},
                   command == proto::PUSH ? std::vector<float>{1, 1} : std::vector<float>{}));
    EXPECT_EQ(refused.header.command(), proto::ERROR_REPLY);
    const std::string& error = refused.header.error();
    EXPECT_NE(error.find(absl::StrCat("worker ", worker.rank(), " incarnation ", alive,
                                      " was declared dead by the scheduler (fenced)")),
              std::string::npos)
        << error;
  }
  EXPECT_EQ(cluster_->server(0).fenced_requests(), 3u);

  // A replacement (a higher incarnation) is served, before or without any notice of it; its
  // push is applied (SGD, learning rate 1) and the fenced one's was not.
  const uint64_t replacement = alive + 5;
  EXPECT_EQ(pull(replacement), initial);
  Message pushed = RoundTrip(DataFrames(from(proto::PUSH, replacement), {1}, {1, 1}));
  EXPECT_EQ(pushed.header.command(), proto::PUSH_REPLY) << pushed.header.error();
  EXPECT_EQ(pull(replacement), initial - 1);
  // Once the replacement was seen, an incarnation between it and the fenced one is refused.
  Message older = RoundTrip(DataFrames(from(proto::PULL, alive + 1), {1}, {}));
  EXPECT_EQ(older.header.command(), proto::ERROR_REPLY);
  EXPECT_EQ(cluster_->server(0).fenced_requests(), 4u);
}

// The forwarding thread serves requests of up to 64 KiB itself and hands larger ones to the
// handler threads: both kinds must be served alike.
TEST_F(ServerTest, SmallAndLargeRequestsAreServedAlike) {
  constexpr int kDim = 2;
  constexpr float kGrad = 0.5f;
  // A reply of 8 bytes lives inside the ZeroMQ message, 32 bytes and more on the heap.
  for (size_t num_keys : {size_t{1}, size_t{4}, size_t{20000}}) {  // 24 bytes to 320 KB
    std::vector<uint64_t> keys(num_keys);
    std::iota(keys.begin(), keys.end(), 1000000 * num_keys);  // owned by server 0, never pushed
    std::vector<float> grads(keys.size() * kDim, kGrad);
    std::vector<float> rows = PushThenPull(keys, grads);
    EXPECT_EQ(rows, std::vector<float>(grads.size(), -kGrad));  // zero initial row, rate 1
  }
}

// With apply_updates off (ps_bench's transport mode) a PULL's reply frame, built in place, holds
// exactly zeros, small or large, even after pushes (which are acknowledged, not applied).
class TransportServerTest : public ServerTest {
  void Customize(InProcessClusterOptions* options) override { options->apply_updates = false; }
};

TEST_F(TransportServerTest, PullsAnswerZerosOfTheRightSize) {
  // Growing, shrinking and growing again: the replies view one shared array of zeros that a
  // larger pull replaces.
  for (size_t num_keys : {size_t{1}, size_t{20000}, size_t{20000}, size_t{5}, size_t{50000}}) {
    std::vector<uint64_t> keys(num_keys);
    std::iota(keys.begin(), keys.end(), 1000);  // owned by server 0
    std::vector<float> grads(keys.size() * 2, 0.5f);
    EXPECT_EQ(PushThenPull(keys, grads), std::vector<float>(grads.size(), 0.0f));
  }
}

// Pulls of different sizes at once, on the forwarding thread and on handler threads: each
// reply holds zeros of its own size, also while a larger pull replaces the shared array of
// zeros that earlier replies still view.
TEST_F(TransportServerTest, ConcurrentPullsOfGrowingSizesAnswerZeros) {
  constexpr int kThreads = 3;
  constexpr int kDim = 2;  // the fixture's table
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t num_keys = 1 + t; num_keys < 200000; num_keys = num_keys * 3 + t) {
        std::vector<uint64_t> keys(num_keys);
        std::iota(keys.begin(), keys.end(), 1000);  // the worker splits them between servers
        std::vector<float> rows;
        absl::Status status =
            cluster_->worker(0).Wait(cluster_->worker(0).Pull("emb", keys, &rows));
        if (!status.ok() || rows != std::vector<float>(num_keys * kDim, 0.0f)) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A server the scheduler declared dead (silent longer than its heartbeat timeout) that comes
// back is fenced: FollowScheduler ends with an error naming the fencing, so the process exits
// non-zero instead of as after an orderly shutdown.
TEST(FollowSchedulerTest, AFencedServerStopsFollowingWithAnErrorNamingTheFencing) {
  zmq::context_t context(1);
  SchedulerOptions options = FastSchedulerOptions(kCluster, 1, 1);
  options.config = SgdTablesConfig({{"emb", 2}}, 1.0f);
  Scheduler scheduler(&context, options);
  absl::Status run;
  std::thread scheduler_thread([&] { run = scheduler.Run(); });
  ASSERT_TRUE(WaitForSchedulerPort(scheduler));
  auto client_options = [&](proto::Role role, absl::Duration heartbeat_interval) {
    SchedulerClientOptions client =
        FastClientOptions(scheduler, kCluster, role, role == proto::SERVER ? 1 : 0);
    client.heartbeat_interval = heartbeat_interval;
    client.heartbeat_timeout = absl::Seconds(60);
    return client;
  };
  // The server heartbeats every 3 s: silent for longer than the scheduler's 600 ms.
  SchedulerClient server_client(&context, client_options(proto::SERVER, absl::Seconds(3)));
  SchedulerClient worker_client(&context, client_options(proto::WORKER, absl::Milliseconds(100)));
  std::thread registering([&] { EXPECT_TRUE(worker_client.Register().ok()); });
  ASSERT_TRUE(server_client.Register().ok());
  registering.join();
  ServerOptions server_options;
  server_options.cluster_id = kCluster;
  ParameterServer server(&context, server_options);  // orders only: never started
  absl::Status followed = FollowScheduler(server_client, server);
  EXPECT_TRUE(absl::IsFailedPrecondition(followed)) << followed;
  EXPECT_NE(followed.message().find("fenced by the scheduler: fenced: server 0 ("),
            std::string::npos)
      << followed;
  scheduler.RequestStop();
  scheduler_thread.join();
}

}  // namespace
}  // namespace granary
