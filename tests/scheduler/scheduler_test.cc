#include "scheduler/scheduler.h"

#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/scheduler_client.h"
#include "common/shard_map.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr char kCluster[] = "scheduler-test";

// A scheduler on a thread with fast heartbeats, and clients that register against it.
class SchedulerTest : public ::testing::Test {
 protected:
  void StartScheduler(int servers, int workers) {
    SchedulerOptions options;
    options.cluster_id = kCluster;
    options.num_servers = servers;
    options.num_workers = workers;
    options.heartbeat_timeout = absl::Milliseconds(600);
    options.check_interval = absl::Milliseconds(50);
    options.register_timeout = absl::Seconds(20);
    options.config.add_tables()->set_name("t");
    scheduler_ = std::make_unique<Scheduler>(&context_, options);
    scheduler_thread_ = std::thread([this] { run_status_ = scheduler_->Run(); });
    ASSERT_TRUE(WaitForPort());
  }

  bool WaitForPort() {
    for (int i = 0; i < 1000 && scheduler_->port() == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return scheduler_->port() != 0;
  }

  std::unique_ptr<SchedulerClient> NewClient(proto::Role role, int port = 0) {
    SchedulerClientOptions options;
    options.scheduler_address = absl::StrCat("127.0.0.1:", scheduler_->port());
    options.cluster_id = kCluster;
    options.role = role;
    options.port = port;
    options.heartbeat_interval = absl::Milliseconds(100);
    options.register_timeout = absl::Seconds(20);
    return std::make_unique<SchedulerClient>(&context_, options);
  }

  // Registers all clients concurrently (Register blocks until the cluster forms).
  static void RegisterAll(const std::vector<SchedulerClient*>& clients) {
    std::vector<absl::Status> statuses(clients.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < clients.size(); ++i) {
      threads.emplace_back([&, i] { statuses[i] = clients[i]->Register(); });
    }
    for (std::thread& thread : threads) thread.join();
    for (const absl::Status& status : statuses) ASSERT_TRUE(status.ok()) << status;
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
  StartScheduler(1, 2);
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  auto w1 = NewClient(proto::WORKER);
  RegisterAll({server.get(), w0.get(), w1.get()});
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
  // The same name can be used again.
  std::thread again([&] { first = w0->Barrier("b1", "workers", absl::Seconds(20)); });
  EXPECT_TRUE(w1->Barrier("b1", "workers", absl::Seconds(20)).ok());
  again.join();
  EXPECT_TRUE(first.ok());
}

TEST_F(SchedulerTest, BarrierTimesOutAndRejectsUnknownGroups) {
  StartScheduler(1, 2);
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  auto w1 = NewClient(proto::WORKER);
  RegisterAll({server.get(), w0.get(), w1.get()});
  absl::Status status = w0->Barrier("lonely", "workers", absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_NE(status.message().find("barrier 'lonely'"), std::string::npos);
  status = w0->Barrier("odd", "everyone", absl::Seconds(5));
  EXPECT_TRUE(absl::IsAborted(status)) << status;
  EXPECT_NE(status.message().find("unknown barrier group 'everyone'"), std::string::npos);
}

TEST_F(SchedulerTest, SilentNodeIsDeclaredDeadNotifiedAndBreaksBarriers) {
  StartScheduler(1, 2);
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  auto w1 = NewClient(proto::WORKER);
  RegisterAll({server.get(), w0.get(), w1.get()});
  std::mutex mutex;
  std::vector<proto::NodeInfo> reported;
  server->SetNodeDeadCallback([&](const proto::NodeInfo& node) {
    std::lock_guard<std::mutex> lock(mutex);
    reported.push_back(node);
  });
  int silent_rank = w1->rank();
  w1.reset();  // stops heartbeating, as a hung or killed process would
  absl::Status status = w0->Barrier("after-death", "workers", absl::Seconds(20));
  // Either the barrier broke because w1 died while w0 waited, or w1 was already dead and
  // the barrier completed with w0 alone: never a hang.
  if (!status.ok()) {
    EXPECT_TRUE(absl::IsAborted(status)) << status;
    EXPECT_NE(status.message().find(absl::StrCat("worker ", silent_rank)), std::string::npos);
  }
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
  EXPECT_EQ(reported[0].rank(), silent_rank);
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

TEST_F(SchedulerTest, ShutsDownWhenAllWorkersAreDone) {
  StartScheduler(1, 2);
  auto server = NewClient(proto::SERVER, 1);
  auto w0 = NewClient(proto::WORKER);
  auto w1 = NewClient(proto::WORKER);
  RegisterAll({server.get(), w0.get(), w1.get()});
  w0->ReportJobDone();
  EXPECT_TRUE(absl::IsDeadlineExceeded(server->WaitForShutdown(absl::Milliseconds(300))));
  w1->ReportJobDone();
  EXPECT_TRUE(server->WaitForShutdown(absl::Seconds(20)).ok());
  EXPECT_TRUE(w0->WaitForShutdown(absl::Seconds(20)).ok());
  scheduler_thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
}

}  // namespace
}  // namespace granary
