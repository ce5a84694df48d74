#include "scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/atomic_file.h"
#include "common/message.h"
#include "common/scheduler_client.h"
#include "common/shard_map.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "scheduler/step_clocks.h"
#include "scheduler/work_queue_service.h"
#include "tests/testing/fast_scheduler.h"

namespace granary {
namespace {

constexpr char kCluster[] = "scheduler-test";

// A scheduler on a thread with fast heartbeats, and clients that register against it.
class SchedulerTest : public ::testing::Test {
 protected:
  // `adjust`, if set, changes the options last.
  void StartScheduler(int servers, int workers, const std::string& checkpoint_dir = "",
                      const std::function<void(SchedulerOptions&)>& adjust = nullptr) {
    SchedulerOptions options = FastSchedulerOptions(kCluster, servers, workers);
    options.checkpoint_dir = checkpoint_dir;
    options.config.add_tables()->set_name("t");
    if (adjust) adjust(options);
    scheduler_ = std::make_unique<Scheduler>(&context_, options);
    scheduler_thread_ = std::thread([this] { run_status_ = scheduler_->Run(); });
    ASSERT_TRUE(WaitForSchedulerPort(*scheduler_));
  }

  // A client heartbeating every `heartbeat_interval`; one of several seconds stays silent long
  // enough to be declared dead, as a stalled process would, yet comes back.
  std::unique_ptr<SchedulerClient> NewClient(
      proto::Role role, int port = 0,
      absl::Duration heartbeat_timeout = SchedulerClientOptions().heartbeat_timeout,
      absl::Duration heartbeat_interval = kFastHeartbeatInterval) {
    SchedulerClientOptions options = FastClientOptions(*scheduler_, kCluster, role, port);
    options.heartbeat_interval = heartbeat_interval;
    options.heartbeat_timeout = heartbeat_timeout;
    return std::make_unique<SchedulerClient>(&context_, options);
  }

  // A thread that answers the next `orders` orders `server` receives with OK, writing nothing (the
  // scheduler only needs the answers); each must come within kOrderTimeout. Join it before
  // checking what the orders did.
  static std::thread AnswerOrders(SchedulerClient* server, int orders) {
    return std::thread([server, orders] {
      for (int i = 0; i < orders; ++i) {
        absl::StatusOr<proto::Header> order = server->WaitForOrder(kOrderTimeout);
        ASSERT_TRUE(order.ok()) << order.status();
        server->AnswerOrder(*order, absl::OkStatus());
      }
    });
  }

  static constexpr absl::Duration kOrderTimeout = absl::Seconds(20);

  struct OneServerTwoWorkers {
    std::unique_ptr<SchedulerClient> server, w0, w1;
  };
  // The usual cluster: a scheduler with 1 server and 2 workers, all registered.
  OneServerTwoWorkers FormOneServerTwoWorkers() {
    StartScheduler(1, 2);
    OneServerTwoWorkers cluster{NewClient(proto::SERVER, 1), NewClient(proto::WORKER),
                                NewClient(proto::WORKER)};
    RegisterAll({cluster.server.get(), cluster.w0.get(), cluster.w1.get()});
    return cluster;
  }

  void TearDown() override {
    if (scheduler_ != nullptr) scheduler_->RequestStop();
    if (scheduler_thread_.joinable()) scheduler_thread_.join();
  }

  zmq::context_t context_{1};
  std::unique_ptr<Scheduler> scheduler_;
  std::thread scheduler_thread_;
  absl::Status run_status_;
};

TEST_F(SchedulerTest, AssignsRanksAndPublishesTheView) {
  StartScheduler(2, 1);
  auto s0 = NewClient(proto::SERVER, 1111);
  auto s1 = NewClient(proto::SERVER, 2222);
  auto w0 = NewClient(proto::WORKER);
  RegisterAll({s0.get(), s1.get(), w0.get()});
  EXPECT_NE(s0->rank(), s1->rank());
  EXPECT_EQ(w0->rank(), 0);
  const proto::ClusterView& view = w0->view();
  EXPECT_EQ(view.nodes_size(), 3);
  EXPECT_EQ(view.config().tables(0).name(), "t");
  absl::StatusOr<ShardMap> map = ShardMap::FromProto(view.shard_map());
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->num_servers(), 2);
  for (const proto::NodeInfo& node : view.nodes()) {
    if (node.role() == proto::SERVER) {
      EXPECT_TRUE(node.port() == 1111 || node.port() == 2222);
    }
  }
}

TEST_F(SchedulerTest, BarrierReleasesOnlyWhenTheGroupArrived) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  std::atomic<bool> first_released{false};
  absl::Status first;
  std::thread waiter([&] {
    first = w0->Barrier("b1", "workers", absl::Seconds(20));
    first_released = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(first_released.load());  // w1 has not arrived
  EXPECT_TRUE(w1->Barrier("b1", "workers", absl::Seconds(20)).ok());
  waiter.join();
  EXPECT_TRUE(first.ok()) << first;
  // A released name stays released: reaching it again (a replacement worker catching up)
  // returns at once.
  EXPECT_TRUE(w0->Barrier("b1", "workers", absl::Milliseconds(500)).ok());
}

TEST_F(SchedulerTest, BarrierTimesOutAndRejectsUnknownGroups) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  absl::Status status = w0->Barrier("lonely", "workers", absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_NE(status.message().find("barrier 'lonely'"), std::string::npos);
  status = w0->Barrier("odd", "everyone", absl::Seconds(5));
  EXPECT_TRUE(absl::IsAborted(status)) << status;
  EXPECT_NE(status.message().find("unknown barrier group 'everyone'"), std::string::npos);
}

TEST_F(SchedulerTest, SilentWorkerIsDeclaredDeadNotifiedAndReleasesTheBarrierItHeldUp) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  std::mutex mutex;
  std::vector<proto::NodeInfo> reported;
  server->SetNodeDeadCallback([&](const proto::NodeInfo& node) {
    std::lock_guard<std::mutex> lock(mutex);
    reported.push_back(node);
  });
  const proto::NodeInfo silent = w1->view().you();
  w1.reset();  // stops heartbeating, as a hung or killed process would
  // w0 waits (w1 is declared dead only after 600 ms); the job goes on without w1, so its death
  // releases the barrier rather than failing it.
  absl::Status status = w0->Barrier("after-death", "workers", absl::Seconds(20));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(w0->dead_workers(), std::vector<int>{silent.rank()});
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!reported.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].role(), proto::WORKER);
  EXPECT_EQ(reported[0].rank(), silent.rank());
  EXPECT_EQ(reported[0].incarnation(), silent.incarnation());
}

TEST_F(SchedulerTest, IncarnationsAreAssignedInRankOrderAndAreUnique) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  std::set<uint64_t> seen;
  for (const proto::NodeInfo& node : w0->view().nodes()) {
    EXPECT_GT(node.incarnation(), 0u);
    seen.insert(node.incarnation());
  }
  EXPECT_EQ(seen, (std::set<uint64_t>{1, 2, 3}));
  EXPECT_EQ(server->view().you().incarnation(), 1u);  // servers first, then workers by rank
  const SchedulerClient& first = w0->rank() == 0 ? *w0 : *w1;
  EXPECT_EQ(first.view().you().incarnation(), 2u);
}

TEST_F(SchedulerTest, LateOrSurplusRegistrationIsRefused) {
  StartScheduler(1, 1);
  auto server = NewClient(proto::SERVER, 1);
  auto worker = NewClient(proto::WORKER);
  RegisterAll({server.get(), worker.get()});
  auto late = NewClient(proto::WORKER);
  absl::Status status = late->Register();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("already formed"), std::string::npos);
}

// The answer to a REGISTER of `role` asking for `rank`, sent on a raw connection (a
// SchedulerClient never asks for a rank); ERROR_REPLY "no reply" if none came within 10 s.
proto::Header RawRegister(zmq::context_t& context, int port, proto::Role role, int rank) {
  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(absl::StrCat("tcp://127.0.0.1:", port));
  proto::Header registration = MakeHeader(proto::REGISTER, kCluster, role, -1);
  registration.mutable_node()->set_role(role);
  registration.mutable_node()->set_rank(rank);
  registration.mutable_node()->set_host("127.0.0.1");
  registration.mutable_node()->set_port(1);
  proto::Header reply;
  reply.set_command(proto::ERROR_REPLY);
  reply.set_error("no reply");
  if (!SendMessage(raw, Message{registration, {}, {}}).ok()) return reply;
  zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::seconds(10)) <= 0) return reply;
  std::vector<zmq::message_t> frames;
  if (zmq::recv_multipart(raw, std::back_inserter(frames)) && !frames.empty()) {
    reply.ParseFromString(frames[0].to_string());
  }
  return reply;
}

// Registration only for the members the launch expects: a control client, a node asking for a
// rank (in range or not), a surplus server before formation and any server after it are each
// refused naming why, and the cluster forms and runs with exactly its configured members.
TEST_F(SchedulerTest, RegistrationOutsideTheExpectedMembersIsRefusedAndChangesNothing) {
  StartScheduler(1, 2);
  auto expect_refused = [](const absl::Status& status, const std::string& reason) {
    EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
    EXPECT_NE(status.message().find(reason), std::string::npos) << status;
  };
  expect_refused(NewClient(proto::CONTROL)->Register(),
                 "only servers and workers register, not a control");
  for (int rank : {0, 1, 7}) {
    proto::Header reply = RawRegister(context_, scheduler_->port(), proto::WORKER, rank);
    EXPECT_EQ(reply.command(), proto::ERROR_REPLY);
    EXPECT_NE(reply.error().find(absl::StrCat("may not ask for rank ", rank)), std::string::npos)
        << reply.error();
  }
  // Two servers for one place: one is refused, the other is the cluster's.
  std::unique_ptr<SchedulerClient> servers[] = {NewClient(proto::SERVER, 1),
                                                NewClient(proto::SERVER, 2)};
  absl::Status registered[2];
  std::thread server_threads[2];
  for (int i = 0; i < 2; ++i) {
    server_threads[i] = std::thread([&, i] { registered[i] = servers[i]->Register(); });
  }
  auto w0 = NewClient(proto::WORKER);
  auto w1 = NewClient(proto::WORKER);
  RegisterAll({w0.get(), w1.get()});
  for (std::thread& thread : server_threads) thread.join();
  const int winner = registered[0].ok() ? 0 : 1;
  ASSERT_TRUE(registered[winner].ok()) << registered[winner];
  // The loser is refused for the place taken, or, if its registration arrived after the
  // workers', for the cluster having formed: the threads race.
  const absl::Status& loser = registered[1 - winner];
  EXPECT_TRUE(absl::IsFailedPrecondition(loser)) << loser;
  EXPECT_TRUE(absl::StrContains(loser.message(), "cluster expects only 1 servers") ||
              absl::StrContains(loser.message(), "a server is not replaced in a running cluster"))
      << loser;
  SchedulerClient* server = servers[winner].get();
  expect_refused(NewClient(proto::SERVER, 3)->Register(),
                 "a server is not replaced in a running cluster");
  expect_refused(NewClient(proto::WORKER)->Register(), "no worker is dead to be replaced");

  // The cluster is the one expected: the winning server, workers 0 and 1, and it runs.
  ASSERT_EQ(w0->view().nodes_size(), 3);
  for (const proto::NodeInfo& node : w0->view().nodes()) {
    if (node.role() == proto::SERVER) {
      EXPECT_EQ(node.port(), winner + 1);
    }
  }
  EXPECT_EQ(w0->rank() + w1->rank(), 1);
  w0->ReportJobDone();
  w1->ReportJobDone();
  ASSERT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

// The scheduler's socket takes its limits from the options (--max_message_bytes): a message
// with a frame over max_message_bytes is dropped unanswered, the same message with a small
// frame is answered, and the cluster still forms.
TEST_F(SchedulerTest, AFrameOverMaxMessageBytesIsDroppedAndTheSchedulerGoesOn) {
  constexpr int64_t kLimit = kMinMaxMessageBytes;
  StartScheduler(1, 1, "", [](SchedulerOptions& options) {
    options.socket_limits.max_message_bytes = kLimit;
  });
  zmq::socket_t raw(context_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(absl::StrCat("tcp://127.0.0.1:", scheduler_->port()));
  proto::Header header = MakeHeader(proto::CHECKPOINT_NOW, kCluster, proto::CONTROL, 0);
  auto send = [&](size_t frame_bytes) {
    std::string header_bytes = header.SerializeAsString();
    std::vector<zmq::message_t> frames;
    frames.emplace_back(header_bytes.data(), header_bytes.size());
    frames.emplace_back(std::string(frame_bytes, 'x'));
    ASSERT_TRUE(zmq::send_multipart(raw, frames));
  };
  zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
  send(static_cast<size_t>(kLimit) + 1);
  EXPECT_EQ(zmq::poll(&item, 1, std::chrono::seconds(1)), 0) << "an oversized frame was answered";
  send(1000);
  ASSERT_GT(zmq::poll(&item, 1, std::chrono::seconds(10)), 0) << "a small frame got no answer";
  std::vector<zmq::message_t> reply;
  ASSERT_TRUE(zmq::recv_multipart(raw, std::back_inserter(reply)));

  auto server = NewClient(proto::SERVER, 1);
  auto worker = NewClient(proto::WORKER);
  RegisterAll({server.get(), worker.get()});
  EXPECT_EQ(worker->view().nodes_size(), 2);
}

// A member holding max_requests_per_peer requests (here barriers it waits in) gets the next one
// refused at once, naming the limit; the ones held are still released; a name over the limit
// is refused too, and neither changes anything.
TEST_F(SchedulerTest, RequestsHeldPerPeerAndNameLengthAreBounded) {
  constexpr int kLimit = 3;
  StartScheduler(1, 2, "",
                 [](SchedulerOptions& options) { options.max_requests_per_peer = kLimit; });
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  auto w1 = NewClient(proto::WORKER);
  RegisterAll({server.get(), w0.get(), w1.get()});

  absl::Status long_name = w0->Barrier(std::string(1000, 'b'), "workers", absl::Seconds(20));
  EXPECT_NE(long_name.message().find("over the scheduler's limit of 256 bytes per name"),
            std::string::npos)
      << long_name;

  // w0 reaches kLimit + 1 barriers at once that wait for w1: exactly one is refused.
  absl::Status reached[kLimit + 1];  // each written by its thread; read once joined
  std::atomic<int> refused_index{-1};
  std::vector<std::thread> threads;
  for (int i = 0; i <= kLimit; ++i) {
    threads.emplace_back([&, i] {
      reached[i] = w0->Barrier(absl::StrCat("b", i), "workers", absl::Seconds(20));
      if (absl::StrContains(reached[i].message(), "--max_requests_per_peer=3")) refused_index = i;
    });
  }
  for (int attempt = 0; attempt < 200 && refused_index < 0; ++attempt) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const int refused = refused_index;
  ASSERT_GE(refused, 0) << "no barrier was refused naming the limit";
  // w1 reaches the held ones: they are released; the refused one was never recorded.
  for (int i = 0; i <= kLimit; ++i) {
    if (i != refused) {
      EXPECT_TRUE(w1->Barrier(absl::StrCat("b", i), "workers", absl::Seconds(20)).ok());
    }
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i <= kLimit; ++i) {
    if (i != refused) {
      EXPECT_TRUE(reached[i].ok()) << i << ": " << reached[i];
    }
  }
  // Below the limit again, w0 waits in barriers as before.
  std::thread again([&] { EXPECT_TRUE(w1->Barrier("after", "workers", absl::Seconds(20)).ok()); });
  EXPECT_TRUE(w0->Barrier("after", "workers", absl::Seconds(20)).ok());
  again.join();
}

// A worker cannot make the scheduler keep clocks without bound: a report that would start a
// clock beyond the limit is ignored, and once the clocks in use are done, new ones start.
TEST_F(SchedulerTest, ClocksInUseAreBounded) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const int kClocks = static_cast<int>(StepClocks::kMaxClocks);
  for (SchedulerClient* worker : {w0.get(), w1.get()}) {
    for (int i = 0; i <= kClocks; ++i) worker->ReportClock(absl::StrCat("c", i), 1);
  }
  EXPECT_TRUE(w0->WaitForClock(absl::StrCat("c", kClocks - 1), 1, absl::Seconds(20)).ok());
  absl::Status beyond = w0->WaitForClock(absl::StrCat("c", kClocks), 1, absl::Seconds(1));
  EXPECT_TRUE(absl::IsDeadlineExceeded(beyond)) << beyond;

  for (SchedulerClient* worker : {w0.get(), w1.get()}) {
    for (int i = 0; i < kClocks; ++i) worker->ReportClockDone(absl::StrCat("c", i));
  }
  absl::Status fresh;
  for (int attempt = 0; attempt < 20; ++attempt) {  // until the done clocks were forgotten
    w0->ReportClock("fresh", attempt + 1);
    w1->ReportClock("fresh", attempt + 1);
    fresh = w0->WaitForClock("fresh", attempt + 1, absl::Milliseconds(500));
    if (fresh.ok()) break;
  }
  EXPECT_TRUE(fresh.ok()) << fresh;
}

TEST_F(SchedulerTest, ShutsDownWhenAllWorkersAreDone) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  w0->ReportJobDone();
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Milliseconds(300))));
  w1->ReportJobDone();
  EXPECT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  EXPECT_TRUE(w0->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

// A worker's death costs the run nothing: it ends once the live workers are done.
TEST_F(SchedulerTest, WorkerDeadBeforeItsJobDoneLetsTheRunEndWithTheOthers) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  w0->ReportJobDone();
  w1.reset();  // stops heartbeating before its JOB_DONE: declared dead after 600 ms
  ASSERT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  EXPECT_TRUE(w0->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

// The live workers take the dead one's chunks over (or a replacement joins): the run goes on
// and succeeds.
TEST_F(SchedulerTest, WorkerDeadWhileOthersTrainLeavesTheRunToThem) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  w1.reset();
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Seconds(2))));
  w0->ReportJobDone();
  ASSERT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

TEST_F(SchedulerTest, EveryWorkerDeadFailsTheRunNamingTheLast) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  w0.reset();
  w1.reset();
  ASSERT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(absl::IsAborted(run_status_)) << run_status_;
  EXPECT_NE(run_status_.message().find("no worker is left alive"), std::string::npos)
      << run_status_;
  EXPECT_NE(run_status_.message().find("no heartbeat for"), std::string::npos) << run_status_;
}

// Collects the nodes a SchedulerClient callback reports, thread-safely.
class ReportedNodes {
 public:
  std::function<void(const proto::NodeInfo&)> Callback() {
    return [this](const proto::NodeInfo& node) {
      std::lock_guard<std::mutex> lock(mutex_);
      nodes_.push_back(node);
    };
  }
  // The nodes reported once at least `count` were, or after 4 s.
  std::vector<proto::NodeInfo> WaitFor(size_t count) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (nodes_.size() >= count) break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    return nodes_;
  }

 private:
  std::mutex mutex_;
  std::vector<proto::NodeInfo> nodes_;
};

TEST_F(SchedulerTest, ReplacementWorkerTakesTheDeadRankWithANewIncarnation) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  // Incarnations at formation: 1.. in rank order, servers first.
  EXPECT_EQ(server->view().you().incarnation(), 1u);
  EXPECT_EQ(w0->view().you().incarnation(), 2u + w0->rank());
  EXPECT_EQ(w1->view().you().incarnation(), 2u + w1->rank());
  for (const proto::NodeInfo& node : w0->view().nodes()) EXPECT_GT(node.incarnation(), 0u);
  EXPECT_FALSE(w0->view().joined_running_job());
  // While every worker lives, no rank is free.
  absl::Status refused = NewClient(proto::WORKER)->Register();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_NE(refused.message().find("no worker is dead to be replaced"), std::string::npos)
      << refused;

  ReportedNodes dead, joined_at_server, joined_at_w0;
  server->SetNodeDeadCallback(dead.Callback());
  server->SetNodeJoinedCallback(joined_at_server.Callback());
  w0->SetNodeJoinedCallback(joined_at_w0.Callback());
  const int dead_rank = w1->rank();
  w1.reset();  // stops heartbeating: declared dead after 600 ms
  ASSERT_EQ(dead.WaitFor(1).size(), 1u);

  auto joiner = NewClient(proto::WORKER);
  ASSERT_TRUE(joiner->Register().ok());
  const proto::ClusterView& view = joiner->view();
  EXPECT_TRUE(view.joined_running_job());
  EXPECT_EQ(view.you().rank(), dead_rank);
  EXPECT_EQ(view.you().incarnation(), 4u);  // after the 3 of the formation
  int workers = 0;
  for (const proto::NodeInfo& node : view.nodes()) {
    if (node.role() != proto::WORKER) continue;
    ++workers;
    if (node.rank() == dead_rank) {
      EXPECT_EQ(node.incarnation(), 4u);
    }
  }
  EXPECT_EQ(workers, 2);
  for (ReportedNodes* told : {&joined_at_server, &joined_at_w0}) {
    std::vector<proto::NodeInfo> nodes = told->WaitFor(1);
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(nodes[0].role(), proto::WORKER);
    EXPECT_EQ(nodes[0].rank(), dead_rank);
    EXPECT_EQ(nodes[0].incarnation(), 4u);
  }
  // The rank is taken again: a second replacement is refused.
  EXPECT_TRUE(absl::IsFailedPrecondition(NewClient(proto::WORKER)->Register()));
  // The replacement counts: the job ends once it is done too.
  w0->ReportJobDone();
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Milliseconds(300))));
  joiner->ReportJobDone();
  ASSERT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

// A worker registering while the cluster shuts down is refused, even with a dead rank free.
TEST_F(SchedulerTest, ReplacementRegisteringWhileTheClusterShutsDownIsRefused) {
  StartScheduler(1, 2, "", [](SchedulerOptions& options) {
    options.heartbeat_timeout = absl::Seconds(2);
    options.shutdown_timeout = absl::Seconds(4);
  });
  // A server that heartbeats but never acknowledges the shutdown, so that it lasts.
  zmq::socket_t raw_server(context_, zmq::socket_type::dealer);
  raw_server.set(zmq::sockopt::linger, 0);
  raw_server.connect(absl::StrCat("tcp://127.0.0.1:", scheduler_->port()));
  proto::Header registration = MakeHeader(proto::REGISTER, kCluster, proto::SERVER, -1);
  registration.mutable_node()->set_role(proto::SERVER);
  registration.mutable_node()->set_rank(-1);
  registration.mutable_node()->set_host("127.0.0.1");
  registration.mutable_node()->set_port(1);
  ASSERT_TRUE(SendMessage(raw_server, Message{registration, {}, {}}).ok());
  std::atomic<bool> stop_heartbeats{false};
  std::thread heartbeats([&] {
    while (!stop_heartbeats) {
      SendMessage(raw_server,
                  Message{MakeHeader(proto::HEARTBEAT, kCluster, proto::SERVER, 0), {}, {}})
          .IgnoreError();
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  auto w0 = NewClient(proto::WORKER);
  auto w1 = NewClient(proto::WORKER);
  RegisterAll({w0.get(), w1.get()});
  ReportedNodes dead;
  w0->SetNodeDeadCallback(dead.Callback());
  w1.reset();
  ASSERT_EQ(dead.WaitFor(1).size(), 1u);
  w0->ReportJobDone();  // the last live worker: the shutdown starts, waiting for the server
  ASSERT_TRUE(w0->WaitForShutdown(absl::Seconds(20)).ok());
  absl::Status refused = NewClient(proto::WORKER)->Register();
  stop_heartbeats = true;
  heartbeats.join();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_NE(refused.message().find("the cluster is shutting down"), std::string::npos) << refused;
}

// A replacement learns which barriers were released, passes them at once, and does not hold
// back the step clocks under way (it starts at 0 there), but counts for the clocks after.
TEST_F(SchedulerTest, ReplacementPassesReleasedBarriersAndDoesNotHoldBackRunningClocks) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  std::thread other([&] { EXPECT_TRUE(w1->Barrier("train-epoch-1", "workers", timeout).ok()); });
  ASSERT_TRUE(w0->Barrier("train-epoch-1", "workers", timeout).ok());
  other.join();
  w0->ReportClock("train-epoch-2", 5);
  w1->ReportClock("train-epoch-2", 5);
  ASSERT_TRUE(w0->WaitForClock("train-epoch-2", 5, timeout).ok());
  ReportedNodes dead;
  server->SetNodeDeadCallback(dead.Callback());
  w1.reset();
  ASSERT_EQ(dead.WaitFor(1).size(), 1u);

  auto joiner = NewClient(proto::WORKER);
  ASSERT_TRUE(joiner->Register().ok());
  EXPECT_EQ(std::vector<std::string>(joiner->view().released_barriers().begin(),
                                     joiner->view().released_barriers().end()),
            std::vector<std::string>{"train-epoch-1"});
  EXPECT_TRUE(joiner->Barrier("train-epoch-1", "workers", absl::Milliseconds(500)).ok());
  // Clock under way: the joiner learns its minimum (5, unchanged since before it joined)...
  EXPECT_TRUE(joiner->WaitForClock("train-epoch-2", 3, absl::Seconds(5)).ok());
  // ...and w0 runs on as far as it alone allows: the joiner's steps do not count.
  joiner->ReportClock("train-epoch-2", 1);
  w0->ReportClock("train-epoch-2", 12);
  EXPECT_TRUE(w0->WaitForClock("train-epoch-2", 12, absl::Seconds(5)).ok());
  // A clock started after it joined counts it, at 0 until it reports.
  w0->ReportClock("train-epoch-3", 3);
  absl::Status held = w0->WaitForClock("train-epoch-3", 3, absl::Milliseconds(500));
  EXPECT_TRUE(absl::IsDeadlineExceeded(held)) << held;
  joiner->ReportClock("train-epoch-3", 3);
  EXPECT_TRUE(w0->WaitForClock("train-epoch-3", 3, timeout).ok());
  // A barrier not yet released when it joined waits for it.
  std::atomic<bool> released{false};
  std::thread waiting([&] {
    EXPECT_TRUE(w0->Barrier("train-epoch-2", "workers", timeout).ok());
    released = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(released.load());
  EXPECT_TRUE(joiner->Barrier("train-epoch-2", "workers", timeout).ok());
  waiting.join();
}

// A SHUTDOWN with a guessed cluster id is answered "rejected" and nothing else: not the real
// id, not the scheduler's role; the cluster goes on, and the real SHUTDOWN still works.
TEST_F(SchedulerTest, AWrongClusterIdIsRejectedWithoutRevealingTheIdAndChangesNothing) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  zmq::socket_t raw(context_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(absl::StrCat("tcp://127.0.0.1:", scheduler_->port()));
  proto::Header guess = MakeHeader(proto::SHUTDOWN, "guess", proto::CONTROL, 0);
  guess.set_request_id(41);
  ASSERT_TRUE(SendMessage(raw, Message{guess, {}, {}}).ok());
  zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_GT(zmq::poll(&item, 1, std::chrono::seconds(10)), 0) << "no reply within 10 s";
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(raw, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 1u);
  const std::string bytes = frames[0].to_string();
  EXPECT_EQ(bytes.find(kCluster), std::string::npos) << "the reply reveals the cluster id";
  proto::Header reply;
  ASSERT_TRUE(reply.ParseFromString(bytes));
  EXPECT_EQ(reply.command(), proto::ERROR_REPLY);
  EXPECT_EQ(reply.error(), kRejectedText);
  EXPECT_EQ(reply.cluster_id(), "guess");
  EXPECT_EQ(reply.request_id(), 41u);
  EXPECT_EQ(reply.sender_role(), proto::ROLE_UNKNOWN);

  // Not shut down: the workers still pass a barrier, and the real SHUTDOWN is obeyed.
  std::thread other([&] { EXPECT_TRUE(w1->Barrier("after", "workers", absl::Seconds(20)).ok()); });
  EXPECT_TRUE(w0->Barrier("after", "workers", absl::Seconds(20)).ok());
  other.join();
  std::unique_ptr<SchedulerClient> control = NewClient(proto::CONTROL);
  absl::StatusOr<proto::Header> shutdown =
      control->ControlRequest(proto::SHUTDOWN, absl::Seconds(20));
  ASSERT_TRUE(shutdown.ok()) << shutdown.status();
  EXPECT_EQ(shutdown->command(), proto::SHUTDOWN_ACK);
  EXPECT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
}

TEST_F(SchedulerTest, ControlRequestShutdownIsAcknowledgedOnceTheClusterShutDown) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  std::unique_ptr<SchedulerClient> control = NewClient(proto::CONTROL);
  absl::StatusOr<proto::Header> reply = control->ControlRequest(proto::SHUTDOWN, absl::Seconds(20));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->command(), proto::SHUTDOWN_ACK);
  EXPECT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  EXPECT_TRUE(w0->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

TEST_F(SchedulerTest, ControlRequestCheckpointIsAnsweredWithTheFolderOnceItsManifestIsWritten) {
  const std::string root = absl::StrCat(::testing::TempDir(), "/control-checkpoint-", getpid());
  std::filesystem::remove_all(root);
  StartScheduler(1, 1, root);
  std::unique_ptr<SchedulerClient> server = NewClient(proto::SERVER, 1);
  std::unique_ptr<SchedulerClient> worker = NewClient(proto::WORKER);
  RegisterAll({server.get(), worker.get()});
  // The server writes nothing: the scheduler only needs its answer to write the manifest.
  std::thread follower([&] {
    absl::StatusOr<proto::Header> order = server->WaitForOrder(absl::Seconds(20));
    ASSERT_TRUE(order.ok()) << order.status();
    EXPECT_EQ(order->command(), proto::CHECKPOINT);
    server->AnswerOrder(*order, absl::OkStatus());
  });
  std::unique_ptr<SchedulerClient> control = NewClient(proto::CONTROL);
  absl::StatusOr<proto::Header> reply =
      control->ControlRequest(proto::CHECKPOINT_NOW, absl::Seconds(20));
  follower.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->command(), proto::ACK);
  EXPECT_TRUE(std::filesystem::exists(reply->checkpoint_dir() + "/MANIFEST"))
      << reply->checkpoint_dir();
  std::filesystem::remove_all(root);
}

// Pruning old checkpoints runs on the scheduler's file thread: while a delete takes 3 s on a
// "slow disk", the loop goes on answering heartbeats and barriers (1 s timeouts on both sides),
// no node is declared dead, the scheduler is not lost, and the old checkpoint still goes.
TEST_F(SchedulerTest, SlowPruneOfAnOldCheckpointDoesNotStallTheEventLoop) {
  constexpr absl::Duration kHeartbeatTimeout = absl::Seconds(1);
  constexpr absl::Duration kSlowDelete = absl::Seconds(3);
  const std::string root = absl::StrCat(::testing::TempDir(), "/slow-prune-", getpid());
  std::filesystem::remove_all(root);
  std::atomic<bool> deleting{false};
  std::atomic<int> deleted{0};
  std::mutex mutex;
  std::vector<std::string> removed_paths;
  StartScheduler(1, 1, root, [&](SchedulerOptions& options) {
    options.heartbeat_timeout = kHeartbeatTimeout;
    options.keep_checkpoints = 1;
    options.remove_tree = [&](const std::string& path) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        removed_paths.push_back(path);
      }
      deleting = true;
      absl::SleepFor(kSlowDelete);
      std::filesystem::remove_all(path);
      deleting = false;
      ++deleted;
      return absl::OkStatus();
    };
  });
  std::unique_ptr<SchedulerClient> server = NewClient(proto::SERVER, 1, kHeartbeatTimeout);
  std::unique_ptr<SchedulerClient> worker = NewClient(proto::WORKER, 0, kHeartbeatTimeout);
  RegisterAll({server.get(), worker.get()});
  std::atomic<int> reported_dead{0};
  server->SetNodeDeadCallback([&](const proto::NodeInfo&) { ++reported_dead; });
  worker->SetNodeDeadCallback([&](const proto::NodeInfo&) { ++reported_dead; });
  // The server writes nothing: the scheduler only needs its answers to write the manifests.
  std::thread follower = AnswerOrders(server.get(), 2);
  std::unique_ptr<SchedulerClient> control = NewClient(proto::CONTROL);
  absl::StatusOr<proto::Header> first =
      control->ControlRequest(proto::CHECKPOINT_NOW, absl::Seconds(20));
  ASSERT_TRUE(first.ok()) << first.status();
  // The second checkpoint is answered at once, though the first one's delete takes 3 s.
  const absl::Time asked = absl::Now();
  absl::StatusOr<proto::Header> second =
      control->ControlRequest(proto::CHECKPOINT_NOW, absl::Seconds(20));
  follower.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_LT(absl::Now() - asked, kSlowDelete);
  for (int i = 0; i < 500 && !deleting && deleted == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(deleting || deleted > 0) << "the old checkpoint was never pruned";
  // While the delete runs, the loop answers at once.
  const absl::Status barrier = worker->Barrier("during-prune", "workers", kHeartbeatTimeout / 2);
  EXPECT_TRUE(barrier.ok()) << barrier;
  EXPECT_TRUE(deleting) << "the delete ended before the barrier was answered";
  for (int i = 0; i < 1000 && deleted == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(deleted.load(), 1);
  // Nobody was lost on either side during the 3 s.
  EXPECT_EQ(reported_dead.load(), 0);
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Milliseconds(1))))
      << "the server lost the scheduler";
  EXPECT_TRUE(absl::IsDeadlineExceeded(worker->WaitForShutdown(absl::Milliseconds(1))))
      << "the worker lost the scheduler";
  {
    std::lock_guard<std::mutex> lock(mutex);
    ASSERT_EQ(removed_paths.size(), 1u);
    EXPECT_EQ(removed_paths[0], first->checkpoint_dir());
  }
  EXPECT_FALSE(std::filesystem::exists(first->checkpoint_dir()));
  EXPECT_TRUE(std::filesystem::exists(second->checkpoint_dir() + "/MANIFEST"));
  std::filesystem::remove_all(root);
}

// A checkpoint's MANIFEST is written off the event loop: its write takes 2 s on a "slow disk"
// (fsyncs under load took over a second) while the nodes keep their 1 s heartbeats; the
// checkpoint is answered only once the manifest is in place, and nobody is lost meanwhile.
TEST_F(SchedulerTest, SlowManifestWriteDoesNotStallTheEventLoop) {
  constexpr absl::Duration kHeartbeatTimeout = absl::Seconds(1);
  constexpr absl::Duration kSlowWrite = absl::Seconds(2);
  const std::string root = absl::StrCat(::testing::TempDir(), "/slow-manifest-", getpid());
  std::filesystem::remove_all(root);
  std::atomic<bool> writing{false};
  std::atomic<int> written{0};
  StartScheduler(1, 1, root, [&](SchedulerOptions& options) {
    options.heartbeat_timeout = kHeartbeatTimeout;
    options.write_file = [&](const std::string& path, const std::string& contents) {
      writing = true;
      absl::SleepFor(kSlowWrite);
      absl::Status status = WriteFileAtomically(path, contents);
      writing = false;
      ++written;
      return status;
    };
  });
  std::unique_ptr<SchedulerClient> server = NewClient(proto::SERVER, 1, kHeartbeatTimeout);
  std::unique_ptr<SchedulerClient> worker = NewClient(proto::WORKER, 0, kHeartbeatTimeout);
  RegisterAll({server.get(), worker.get()});
  std::atomic<int> reported_dead{0};
  server->SetNodeDeadCallback([&](const proto::NodeInfo&) { ++reported_dead; });
  worker->SetNodeDeadCallback([&](const proto::NodeInfo&) { ++reported_dead; });
  std::thread follower = AnswerOrders(server.get(), 1);
  std::optional<absl::StatusOr<proto::Header>> answer;
  std::thread control_thread([&] {
    std::unique_ptr<SchedulerClient> control = NewClient(proto::CONTROL);
    answer = control->ControlRequest(proto::CHECKPOINT_NOW, absl::Seconds(20));
  });
  for (int i = 0; i < 1000 && !writing && written == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(writing) << "the manifest write never started, or ended at once";
  // While the manifest is written, the loop answers at once.
  const absl::Status barrier = worker->Barrier("during-write", "workers", kHeartbeatTimeout / 2);
  EXPECT_TRUE(barrier.ok()) << barrier;
  EXPECT_TRUE(writing) << "the write ended before the barrier was answered";
  control_thread.join();
  follower.join();
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->ok()) << answer->status();
  EXPECT_EQ(written.load(), 1) << "the checkpoint was answered before its manifest was written";
  EXPECT_TRUE(std::filesystem::exists((*answer)->checkpoint_dir() + "/MANIFEST"));
  EXPECT_EQ(reported_dead.load(), 0);
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Milliseconds(1))))
      << "the server lost the scheduler";
  std::filesystem::remove_all(root);
}

// Publishing a closed day runs on the file thread too: replacing an earlier base of the day
// takes 3 s on a "slow disk" while the nodes keep their 1 s heartbeats, and the day counts as
// closed (shutdown ordered, Run() returns) only once base and report are in place.
TEST_F(SchedulerTest, SlowPublishOfAClosedDayDoesNotStallTheLoopAndEndsBeforeTheClose) {
  constexpr absl::Duration kHeartbeatTimeout = absl::Seconds(1);
  constexpr absl::Duration kSlowDelete = absl::Seconds(3);
  constexpr char kDay[] = "20260102";
  const std::string root = absl::StrCat(::testing::TempDir(), "/slow-publish-", getpid());
  const std::string model = root + "/model";
  const std::string base = absl::StrCat(model, "/bases/", kDay);
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(base + "/server-0");  // an earlier run of the day
  std::atomic<bool> deleting{false};
  std::atomic<bool> deleted{false};
  StartScheduler(1, 1, root + "/checkpoints", [&](SchedulerOptions& options) {
    options.heartbeat_timeout = kHeartbeatTimeout;
    options.day = kDay;
    options.close_day_into = model;
    options.remove_tree = [&](const std::string& path) {
      deleting = true;
      absl::SleepFor(kSlowDelete);
      std::filesystem::remove_all(path);
      deleted = true;
      deleting = false;
      return absl::OkStatus();
    };
  });
  std::unique_ptr<SchedulerClient> server = NewClient(proto::SERVER, 1, kHeartbeatTimeout);
  std::unique_ptr<SchedulerClient> worker = NewClient(proto::WORKER, 0, kHeartbeatTimeout);
  RegisterAll({server.get(), worker.get()});
  // SHRINK, EXPORT_DELTA and CHECKPOINT: the server answers and writes nothing.
  std::thread follower = AnswerOrders(server.get(), 3);
  worker->ReportJobDone();
  follower.join();
  for (int i = 0; i < 1000 && !deleting && !deleted; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(deleting || deleted) << "the earlier base was never removed";
  // Well past the heartbeat timeout into the delete: the day is not closed yet, and neither node
  // lost the scheduler.
  absl::SleepFor(kHeartbeatTimeout + kHeartbeatTimeout / 2);
  EXPECT_TRUE(deleting) << "the delete ended too early to tell";
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Milliseconds(1))))
      << "the server lost the scheduler, or the day closed before its publish";
  EXPECT_TRUE(absl::IsDeadlineExceeded(worker->WaitForShutdown(absl::Milliseconds(1))))
      << "the worker lost the scheduler, or the day closed before its publish";
  EXPECT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  EXPECT_TRUE(deleted) << "the day closed before its publish finished";
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  EXPECT_TRUE(std::filesystem::exists(base + "/MANIFEST")) << base;
  EXPECT_FALSE(std::filesystem::exists(base + "/server-0")) << "the earlier base is still there";
  EXPECT_TRUE(std::filesystem::exists(absl::StrCat(model, "/reports/", kDay, ".close.json")));
  std::filesystem::remove_all(root);
}

// A publish whose move fails (--fault_in_close=publish_error) fails the close naming it and
// leaves an earlier base of the day in place, whole, with no report: the day is not closed.
TEST_F(SchedulerTest, AFailedPublishLeavesTheEarlierBaseOfTheDayInPlace) {
  constexpr char kDay[] = "20260103";
  const std::string root = absl::StrCat(::testing::TempDir(), "/failed-publish-", getpid());
  const std::string model = root + "/model";
  const std::string base = absl::StrCat(model, "/bases/", kDay);
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(base + "/server-0");  // an earlier run of the day
  StartScheduler(1, 1, root + "/checkpoints", [&](SchedulerOptions& options) {
    options.day = kDay;
    options.close_day_into = model;
    options.fault_in_close = "publish_error";
  });
  std::unique_ptr<SchedulerClient> server = NewClient(proto::SERVER, 1);
  std::unique_ptr<SchedulerClient> worker = NewClient(proto::WORKER, 0);
  RegisterAll({server.get(), worker.get()});
  std::thread follower = AnswerOrders(server.get(), 3);
  worker->ReportJobDone();
  follower.join();
  scheduler_thread_.join();
  EXPECT_FALSE(run_status_.ok());
  EXPECT_NE(run_status_.message().find(
                absl::StrCat("closing day ", kDay, " failed: cannot move checkpoint")),
            std::string::npos)
      << run_status_;
  EXPECT_TRUE(std::filesystem::exists(base + "/server-0")) << "the earlier base is gone";
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(model, "/bases/.", kDay, ".replaced")));
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(model, "/reports/", kDay, ".close.json")));
  std::filesystem::remove_all(root);
}

TEST_F(SchedulerTest, ControlRequestErrorsNameTheSchedulerAndItsAnswer) {
  StartScheduler(1, 1);
  std::unique_ptr<SchedulerClient> control = NewClient(proto::CONTROL);
  absl::StatusOr<proto::Header> refused =
      control->ControlRequest(proto::CHECKPOINT_NOW, absl::Seconds(20));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find(
                absl::StrCat("scheduler 127.0.0.1:", scheduler_->port(), " answered: ")),
            std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("this run keeps no checkpoints"), std::string::npos)
      << refused.status();

  // Nothing listens on port 1.
  SchedulerClientOptions options;
  options.scheduler_address = "127.0.0.1:1";
  options.cluster_id = kCluster;
  options.role = proto::CONTROL;
  SchedulerClient nobody(&context_, options);
  absl::StatusOr<proto::Header> silent =
      nobody.ControlRequest(proto::SHUTDOWN, absl::Milliseconds(200));
  EXPECT_TRUE(absl::IsDeadlineExceeded(silent.status())) << silent.status();
  EXPECT_NE(silent.status().message().find("scheduler 127.0.0.1:1 did not answer SHUTDOWN"),
            std::string::npos)
      << silent.status();
}

// Run() of a scheduler with `options` refuses them at once: InvalidArgument, saying `why`.
void ExpectRunRefuses(const SchedulerOptions& options, const std::string& why) {
  zmq::context_t context(1);
  Scheduler scheduler(&context, options);
  absl::Status status = scheduler.Run();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find(why), std::string::npos) << status;
}

TEST(SchedulerOptionsTest, RunRefusesAnUnknownCloseFault) {
  SchedulerOptions options;
  options.fault_in_close = "shrnk";
  ExpectRunRefuses(options, "fault_in_close 'shrnk' is none of: shrink, export");
}

TEST(SchedulerOptionsTest, RunRefusesNoRequestsPerPeer) {
  SchedulerOptions options;
  options.max_requests_per_peer = 0;
  ExpectRunRefuses(options, "max_requests_per_peer must be >= 1 (is 0)");
}

TEST(SchedulerOptionsTest, RunRefusesAClusterWithoutServersOrWorkers) {
  SchedulerOptions options;
  options.num_workers = 0;
  ExpectRunRefuses(options, "num_servers and num_workers must be >= 1");
}

proto::WorkQueueSpec ChunkSpec(const std::string& name, int chunks) {
  proto::WorkQueueSpec spec;
  spec.set_name(name);
  for (int i = 0; i < chunks; ++i) {
    proto::Chunk* chunk = spec.add_chunks();
    chunk->set_id(i);
    chunk->set_file(absl::StrCat("part-", i));
  }
  return spec;
}

TEST_F(SchedulerTest, WorkQueueHandsEveryChunkToExactlyOneWorker) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("day-1", 6), timeout).ok());
  ASSERT_TRUE(w1->OpenQueue(ChunkSpec("day-1", 6), timeout).ok());  // same definition: fine

  // Both workers drain the queue concurrently; every chunk is trained exactly once.
  std::vector<std::vector<uint64_t>> trained(2);
  std::vector<absl::Status> statuses(2);
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      SchedulerClient& client = w == 0 ? *w0 : *w1;
      for (int i = 0; i < 10; ++i) {  // bounded: 6 chunks, then "drained"
        absl::StatusOr<std::optional<proto::Chunk>> chunk = client.NextChunk("day-1", timeout);
        if (!chunk.ok()) {
          statuses[w] = chunk.status();
          return;
        }
        if (!chunk->has_value()) return;
        trained[w].push_back((*chunk)->id());
        statuses[w] = client.FinishChunk("day-1", (*chunk)->id(), timeout);
        if (!statuses[w].ok()) return;
      }
      statuses[w] = absl::InternalError("never drained");
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) ASSERT_TRUE(status.ok()) << status;
  std::vector<uint64_t> all = trained[0];
  all.insert(all.end(), trained[1].begin(), trained[1].end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
}

// The queues open may take max_work_queue_bytes together: one that would take more is refused
// naming the limit, and the queues open still serve.
TEST_F(SchedulerTest, WorkQueuesBeyondTheirMemoryLimitAreRefused) {
  const size_t small = WorkQueueService::QueueBytes(ChunkSpec("small", 2));
  StartScheduler(1, 1, "", [small](SchedulerOptions& options) {
    options.max_work_queue_bytes = 2 * small + 1;
  });
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  RegisterAll({server.get(), w0.get()});
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("small", 2), timeout).ok());
  absl::Status big = w0->OpenQueue(ChunkSpec("big", 100), timeout);
  ASSERT_TRUE(absl::IsFailedPrecondition(big)) << big;
  EXPECT_NE(big.message().find(
                absl::StrCat("over the limit (--max_work_queue_bytes=", 2 * small + 1, ")")),
            std::string::npos)
      << big;
  absl::StatusOr<std::optional<proto::Chunk>> refused = w0->NextChunk("big", timeout);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("small", 2), timeout).ok());  // open already: no more
  absl::StatusOr<std::optional<proto::Chunk>> chunk = w0->NextChunk("small", timeout);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_TRUE(chunk->has_value());
}

TEST_F(SchedulerTest, WorkQueueErrorsNameTheQueueAndTheWorker) {
  StartScheduler(1, 1);
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  RegisterAll({server.get(), w0.get()});
  const absl::Duration timeout = absl::Seconds(20);
  absl::StatusOr<std::optional<proto::Chunk>> unknown = w0->NextChunk("nope", timeout);
  ASSERT_TRUE(absl::IsFailedPrecondition(unknown.status())) << unknown.status();
  EXPECT_NE(unknown.status().message().find("no work queue 'nope'"), std::string::npos);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("q", 2), timeout).ok());
  absl::Status redefined = w0->OpenQueue(ChunkSpec("q", 3), timeout);
  ASSERT_TRUE(absl::IsFailedPrecondition(redefined));
  EXPECT_NE(redefined.message().find("work queue 'q' from worker 0"), std::string::npos)
      << redefined;
  proto::WorkQueueSpec dealt = ChunkSpec("q", 2);
  dealt.set_assignment(proto::WorkQueueSpec::ROUND_ROBIN);
  dealt.set_num_workers(1);
  absl::Status other_mode = w0->OpenQueue(dealt, timeout);
  ASSERT_TRUE(absl::IsFailedPrecondition(other_mode));
  EXPECT_NE(other_mode.message().find("work queue 'q' from worker 0 (pid"), std::string::npos)
      << other_mode;
  EXPECT_NE(other_mode.message().find("deals its chunks round-robin to 1 workers; it was opened "
                                      "dealing them to whichever worker asks"),
            std::string::npos)
      << other_mode;
  absl::Status not_held = w0->FinishChunk("q", 1, timeout);
  ASSERT_TRUE(absl::IsFailedPrecondition(not_held));
  EXPECT_NE(not_held.message().find("worker 0 finished chunk 1, which is not handed out"),
            std::string::npos)
      << not_held;
}

proto::WorkQueueSpec RoundRobinSpec(const std::string& name, int chunks, int workers) {
  proto::WorkQueueSpec spec = ChunkSpec(name, chunks);
  spec.set_assignment(proto::WorkQueueSpec::ROUND_ROBIN);
  spec.set_num_workers(workers);
  return spec;
}

// Bulk-synchronous queues: the worker of rank r trains chunks r, r + 2, ... in order, however
// the two race; the one done first waits for "drained" until the other finished its last.
TEST_F(SchedulerTest, RoundRobinQueueDealsChunksByRank) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(RoundRobinSpec("epoch", 5, 2), timeout).ok());
  std::vector<std::vector<uint64_t>> trained(2);
  std::vector<absl::Status> statuses(2);
  std::vector<std::thread> threads;
  for (SchedulerClient* client : {w0.get(), w1.get()}) {
    threads.emplace_back([&, client] {
      const int rank = client->rank();
      for (int i = 0; i < 10; ++i) {  // bounded: at most 3 chunks, then "drained"
        absl::StatusOr<std::optional<proto::Chunk>> chunk = client->NextChunk("epoch", timeout);
        if (!chunk.ok()) {
          statuses[rank] = chunk.status();
          return;
        }
        if (!chunk->has_value()) return;
        trained[rank].push_back((*chunk)->id());
        // The other worker asks meanwhile: it must not get this worker's next chunk.
        absl::SleepFor(absl::Milliseconds(rank == 0 ? 30 : 1));
        statuses[rank] = client->FinishChunk("epoch", (*chunk)->id(), timeout);
        if (!statuses[rank].ok()) return;
      }
      statuses[rank] = absl::InternalError("never drained");
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(trained[0], (std::vector<uint64_t>{0, 2, 4}));
  EXPECT_EQ(trained[1], (std::vector<uint64_t>{1, 3}));
}

TEST_F(SchedulerTest, RoundRobinQueueForAnotherNumberOfWorkersIsRefused) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  absl::Status status = w1->OpenQueue(RoundRobinSpec("epoch", 4, 3), absl::Seconds(20));
  ASSERT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find(absl::StrCat("work queue 'epoch' from worker ", w1->rank())),
            std::string::npos)
      << status;
  EXPECT_NE(status.message().find("deals its chunks to 3 workers; the cluster has 2"),
            std::string::npos)
      << status;
}

// A worker dead before or after the queue opens: its chunks go to the worker left.
TEST_F(SchedulerTest, RoundRobinChunksOfADeadWorkerGoToTheOther) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  const int rank = w0->rank();
  w1.reset();
  ASSERT_TRUE(w0->OpenQueue(RoundRobinSpec("epoch", 3, 2), timeout).ok());
  std::vector<uint64_t> trained;
  for (int i = 0; i < 5; ++i) {  // bounded: 3 chunks, then "drained"
    absl::StatusOr<std::optional<proto::Chunk>> chunk = w0->NextChunk("epoch", timeout);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk->has_value()) break;
    trained.push_back((*chunk)->id());
    ASSERT_TRUE(w0->FinishChunk("epoch", (*chunk)->id(), timeout).ok());
  }
  std::sort(trained.begin(), trained.end());
  EXPECT_EQ(trained, (std::vector<uint64_t>{0, 1, 2})) << "worker " << rank;
}

// A worker declared dead that comes back (a stall) is fenced: every message it sends is
// answered with SHUTDOWN saying why, and changes nothing: its chunk went to the other worker,
// its CHUNK_DONE is not counted, its barrier arrival holds nothing up.
TEST_F(SchedulerTest, AFencedWorkerIsRefusedToldWhyAndChangesNothing) {
  StartScheduler(1, 2);
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  // Heartbeats every 5 s: silent for longer than the scheduler's 600 ms timeout.
  auto stalled = NewClient(proto::WORKER, 0, absl::Seconds(60), absl::Seconds(5));
  RegisterAll({server.get(), w0.get(), stalled.get()});
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("q", 1), timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> taken = stalled->NextChunk("q", timeout);
  ASSERT_TRUE(taken.ok() && taken->has_value()) << taken.status();
  // Declared dead: its chunk comes back to w0, which waits for it.
  absl::StatusOr<std::optional<proto::Chunk>> again = w0->NextChunk("q", timeout);
  ASSERT_TRUE(again.ok() && again->has_value()) << again.status();
  EXPECT_EQ((*again)->id(), 0u);
  ASSERT_FALSE(w0->dead_workers().empty());

  // Back from the stall: its report of the chunk is refused, and the scheduler tells it why.
  absl::Status done = stalled->FinishChunk("q", 0, timeout);
  EXPECT_TRUE(absl::IsAborted(done)) << done;
  EXPECT_TRUE(stalled->shutdown_requested());
  const std::string reason = stalled->fenced_reason();
  EXPECT_NE(reason.find(absl::StrCat("fenced: worker ", stalled->rank(), " (")), std::string::npos)
      << reason;
  EXPECT_NE(reason.find(absl::StrCat("incarnation ", stalled->view().you().incarnation(),
                                     " was declared dead by the scheduler (no heartbeat for")),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("declared dead at "), std::string::npos) << reason;
  // Its barrier arrival neither completes nor holds up one; its JOB_DONE ends nothing.
  stalled->ReportJobDone(absl::InternalError("from a fenced worker"));
  EXPECT_TRUE(w0->Barrier("live-only", "workers", timeout).ok());
  // The chunk is still w0's: only its CHUNK_DONE counts.
  EXPECT_TRUE(w0->FinishChunk("q", 0, timeout).ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Milliseconds(300))));
  w0->ReportJobDone();
  ASSERT_TRUE(server->WaitForShutdown(timeout).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;  // the fenced worker's failure is not the run's
}

// A queue opened after a replacement took a dead worker's rank deals that rank's chunks to the
// replacement, not to the others.
TEST_F(SchedulerTest, RoundRobinChunksOfAReplacedRankGoToTheReplacement) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  ReportedNodes dead;
  server->SetNodeDeadCallback(dead.Callback());
  const int replaced_rank = w1->rank();
  w1.reset();
  ASSERT_EQ(dead.WaitFor(1).size(), 1u);
  auto joiner = NewClient(proto::WORKER);
  ASSERT_TRUE(joiner->Register().ok());
  ASSERT_TRUE(w0->OpenQueue(RoundRobinSpec("epoch", 2, 2), timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> own = w0->NextChunk("epoch", timeout);
  ASSERT_TRUE(own.ok() && own->has_value()) << own.status();
  EXPECT_EQ((*own)->id(), static_cast<uint64_t>(w0->rank()));
  // The other chunk is the replacement's: w0 waits for it.
  absl::StatusOr<std::optional<proto::Chunk>> other =
      w0->NextChunk("epoch", absl::Milliseconds(500));
  EXPECT_TRUE(absl::IsDeadlineExceeded(other.status())) << other.status();
  ASSERT_TRUE(joiner->OpenQueue(RoundRobinSpec("epoch", 2, 2), timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> its = joiner->NextChunk("epoch", timeout);
  ASSERT_TRUE(its.ok() && its->has_value()) << its.status();
  EXPECT_EQ((*its)->id(), static_cast<uint64_t>(replaced_rank));
}

// A worker that asks while the last chunks are with another worker waits; when that worker
// dies, its chunks come back to the one waiting.
TEST_F(SchedulerTest, ChunksOfADeadWorkerGoToAWaitingWorker) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("q", 1), timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> taken = w1->NextChunk("q", timeout);
  ASSERT_TRUE(taken.ok() && taken->has_value()) << taken.status();
  w1.reset();  // dies holding chunk 0
  absl::StatusOr<std::optional<proto::Chunk>> again = w0->NextChunk("q", timeout);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->id(), 0u);
  ASSERT_TRUE(w0->FinishChunk("q", 0, timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> drained = w0->NextChunk("q", timeout);
  ASSERT_TRUE(drained.ok()) << drained.status();
  EXPECT_FALSE(drained->has_value());
}

proto::ChunkProgress ProgressOf(const std::string& queue, uint64_t chunk, uint64_t lines,
                                uint64_t samples, uint32_t in_flight) {
  proto::ChunkProgress progress;
  progress.set_queue(queue);
  progress.set_chunk_id(chunk);
  progress.set_lines_done(lines);
  progress.set_samples_trained(samples);
  progress.set_batches_in_flight(in_flight);
  return progress;
}

// A worker reports its progress; when it dies its chunk is handed out again carrying the
// resume point, its batches in flight are counted, bad reports are ignored, and the drained
// answer carries the queue's totals from the scheduler's records.
TEST_F(SchedulerTest, ChunkOfADeadWorkerResumesAtItsReportedProgress) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("q", 2), timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> first = w1->NextChunk("q", timeout);
  ASSERT_TRUE(first.ok() && first->has_value()) << first.status();
  ASSERT_EQ((*first)->id(), 0u);
  EXPECT_EQ((*first)->skip_lines(), 0u);
  w1->ReportChunkProgress(ProgressOf("q", 0, 20, 18, 1));
  w1->ReportChunkProgress(ProgressOf("q", 0, 50, 45, 4));  // may replace the one before
  // Ignored, naming the worker: not its chunk, and an unknown queue.
  w0->ReportChunkProgress(ProgressOf("q", 0, 90, 90, 0));
  w0->ReportChunkProgress(ProgressOf("nope", 0, 90, 90, 0));
  // Requests after the reports on the same connection: once answered, the reports are in.
  ASSERT_TRUE(w1->OpenQueue(ChunkSpec("q", 2), timeout).ok());
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("q", 2), timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> second = w0->NextChunk("q", timeout);
  ASSERT_TRUE(second.ok() && second->has_value()) << second.status();
  EXPECT_EQ((*second)->id(), 1u);
  EXPECT_EQ((*second)->skip_lines(), 0u);
  ASSERT_TRUE(w0->FinishChunk("q", 1, timeout, ProgressOf("q", 1, 10, 9, 0)).ok());
  w1.reset();  // dies holding chunk 0
  absl::StatusOr<std::optional<proto::Chunk>> resumed = w0->NextChunk("q", timeout);
  ASSERT_TRUE(resumed.ok() && resumed->has_value()) << resumed.status();
  EXPECT_EQ((*resumed)->id(), 0u);
  EXPECT_EQ((*resumed)->skip_lines(), 50u);
  ASSERT_TRUE(w0->FinishChunk("q", 0, timeout, ProgressOf("q", 0, 80, 28, 0)).ok());
  absl::StatusOr<std::optional<proto::Chunk>> drained = w0->NextChunk("q", timeout);
  ASSERT_TRUE(drained.ok()) << drained.status();
  EXPECT_FALSE(drained->has_value());
  const proto::QueueTotals totals = w0->DrainedQueueTotals("q");
  EXPECT_EQ(totals.samples_trained(), 45u + 28u + 9u);
  EXPECT_EQ(totals.requeued_chunks(), 1u);
  EXPECT_EQ(totals.partial_batches(), 4u);
}

// A chunk handed out after its NextChunk call gave up is not lost: the next call returns it.
TEST_F(SchedulerTest, ChunkAnsweredAfterTheCallGaveUpIsReturnedByTheNextCall) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("q", 1), timeout).ok());
  ASSERT_TRUE(w1->NextChunk("q", timeout).ok());
  // w0 gives up waiting while w1 holds the only chunk...
  absl::StatusOr<std::optional<proto::Chunk>> gave_up = w0->NextChunk("q", absl::Milliseconds(100));
  ASSERT_TRUE(absl::IsDeadlineExceeded(gave_up.status())) << gave_up.status();
  w1.reset();  // ...then w1 dies and the scheduler answers w0's held request
  const absl::Time asked = absl::Now();
  absl::StatusOr<std::optional<proto::Chunk>> later = w0->NextChunk("q", timeout);
  // Served by the abandoned call's answer as it arrives, not when this call times out.
  EXPECT_LT(absl::Now() - asked, timeout / 2);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_TRUE(later->has_value());
  EXPECT_EQ((*later)->id(), 0u);
  EXPECT_TRUE(w0->FinishChunk("q", 0, timeout).ok());
}

// Step clocks: workers of different speeds run kSteps steps each; before step k (having
// finished k - 1) a worker waits until every worker finished k - 1 - s. Checks, at every step
// start, how far the worker is ahead of the slowest one by the steps the others really
// finished (each counts a step before reporting it, so the count is never behind the
// scheduler's view).
class StepClockBoundTest : public SchedulerTest, public ::testing::WithParamInterface<int> {};

TEST_P(StepClockBoundTest, NoWorkerRunsMoreThanSStepsAheadOfTheSlowest) {
  const int staleness = GetParam();
  constexpr int kWorkers = 3;
  constexpr int64_t kSteps = 12;
  StartScheduler(1, kWorkers);
  auto server = NewClient(proto::SERVER, 1);
  std::vector<std::unique_ptr<SchedulerClient>> workers;
  std::vector<SchedulerClient*> all = {server.get()};
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(NewClient(proto::WORKER));
    all.push_back(workers.back().get());
  }
  RegisterAll(all);
  std::atomic<int64_t> finished[kWorkers] = {};
  std::atomic<int64_t> max_lead{0};
  std::vector<absl::Status> statuses(kWorkers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      SchedulerClient& client = *workers[w];
      for (int64_t k = 1; k <= kSteps; ++k) {
        absl::Status waited = client.WaitForClock("clock", k - 1 - staleness, absl::Seconds(20));
        if (!waited.ok()) {
          statuses[w] = waited;
          break;
        }
        int64_t slowest = k - 1;
        for (int v = 0; v < kWorkers; ++v) slowest = std::min(slowest, finished[v].load());
        int64_t lead = max_lead.load();
        while (k - 1 - slowest > lead && !max_lead.compare_exchange_weak(lead, k - 1 - slowest)) {
        }
        absl::SleepFor(absl::Milliseconds(3 * w));  // worker w is the slowest of all
        finished[w] = k;
        client.ReportClock("clock", k);
      }
      client.ReportClockDone("clock");
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) EXPECT_TRUE(status.ok()) << status;
  for (int w = 0; w < kWorkers; ++w) EXPECT_EQ(finished[w].load(), kSteps);
  EXPECT_LE(max_lead.load(), staleness);
}

INSTANTIATE_TEST_SUITE_P(BspAndSsp, StepClockBoundTest, ::testing::Values(0, 2));

TEST_F(SchedulerTest, StepClockLetsAWorkerAheadBySStepsThenTimesOutNamingWhoIsBehind) {
  StartScheduler(1, 2);
  auto server = NewClient(proto::SERVER, 1);
  auto fast = NewClient(proto::WORKER);
  auto slow = NewClient(proto::WORKER);
  RegisterAll({server.get(), fast.get(), slow.get()});
  constexpr int kStaleness = 2;
  // Steps 1..3 need the others at steps <= 0: no waiting.
  for (int64_t k = 1; k <= 3; ++k) {
    ASSERT_TRUE(fast->WaitForClock("c", k - 1 - kStaleness, absl::Seconds(20)).ok());
    fast->ReportClock("c", k);
  }
  // Step 4 needs every worker at step 1; the slow one has none.
  absl::Status waited = fast->WaitForClock("c", 4 - 1 - kStaleness, absl::Milliseconds(300));
  ASSERT_TRUE(absl::IsDeadlineExceeded(waited)) << waited;
  EXPECT_NE(waited.message().find(absl::StrCat("worker ", slow->rank(), " at step 0")),
            std::string::npos)
      << waited;
  EXPECT_NE(waited.message().find("clock 'c'"), std::string::npos) << waited;
  slow->ReportClock("c", 1);
  EXPECT_TRUE(fast->WaitForClock("c", 4 - 1 - kStaleness, absl::Seconds(20)).ok());
}

// A worker that stops counting (done with the clock, finished its job, or dead) releases a
// worker waiting for it.
TEST_F(SchedulerTest, StepClockIsReleasedByADoneAFinishedOrADeadWorker) {
  StartScheduler(1, 4);
  auto server = NewClient(proto::SERVER, 1);
  auto waiter = NewClient(proto::WORKER);
  auto done = NewClient(proto::WORKER);
  auto finished = NewClient(proto::WORKER);
  auto dying = NewClient(proto::WORKER);
  RegisterAll({server.get(), waiter.get(), done.get(), finished.get(), dying.get()});
  waiter->ReportClock("c", 1);
  const absl::Duration timeout = absl::Seconds(20);
  std::atomic<bool> released{false};
  absl::Status status;
  std::thread waiting([&] {
    status = waiter->WaitForClock("c", 1, timeout);
    released = true;
  });
  done->ReportClockDone("c");
  finished->ReportJobDone();
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(released.load());  // the dying worker still counts, at step 0
  dying.reset();                  // stops heartbeating: declared dead after 600 ms
  waiting.join();
  EXPECT_TRUE(status.ok()) << status;
}

// A worker waiting for a chunk of the queue of the clock's name trains nothing: it does not
// hold back the worker that has the chunks.
TEST_F(SchedulerTest, StepClockIgnoresAWorkerWaitingForAChunk) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  const absl::Duration timeout = absl::Seconds(20);
  ASSERT_TRUE(w0->OpenQueue(ChunkSpec("q", 1), timeout).ok());
  absl::StatusOr<std::optional<proto::Chunk>> taken = w0->NextChunk("q", timeout);
  ASSERT_TRUE(taken.ok() && taken->has_value()) << taken.status();
  absl::StatusOr<std::optional<proto::Chunk>> idle;
  std::thread asking([&] { idle = w1->NextChunk("q", timeout); });  // held: w0 has the chunk
  w0->ReportClock("q", 1);
  EXPECT_TRUE(w0->WaitForClock("q", 1, timeout).ok());
  ASSERT_TRUE(w0->FinishChunk("q", 0, timeout).ok());
  asking.join();
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_FALSE(idle->has_value());
}

// What lets a worker destroy its KV client safely (worker/job.cc): once SetNodeDeadCallback
// returns, the callback it replaced is not running and never runs again.
TEST_F(SchedulerTest, ReplacingTheNodeDeadCallbackWaitsForARunningCall) {
  auto [server, w0, w1] = FormOneServerTwoWorkers();
  std::atomic<int> calls{0};
  std::atomic<bool> running{false};
  absl::Notification release;
  w0->SetNodeDeadCallback([&](const proto::NodeInfo&) {
    running = true;
    release.WaitForNotificationWithTimeout(absl::Seconds(20));
    ++calls;
    running = false;
  });
  w1.reset();  // stops heartbeating: the scheduler reports it dead to w0
  for (int i = 0; i < 1000 && !running; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(running) << "no NODE_DEAD notice reached the callback";

  std::atomic<bool> cleared{false};
  std::thread clear([&] {
    w0->SetNodeDeadCallback(nullptr);
    // What the callback used may be destroyed now: it must have ended.
    EXPECT_FALSE(running);
    EXPECT_EQ(calls.load(), 1);
    cleared = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(cleared) << "SetNodeDeadCallback returned while the callback ran";
  release.Notify();
  clear.join();
  EXPECT_TRUE(cleared);
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace granary
