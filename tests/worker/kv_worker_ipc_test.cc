// KVWorker over ipc:// (common/ipc_endpoint.h): workers of a server's host connect to its
// socket file, others over TCP, and both carry exactly the same requests.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "tests/testing/curve_router.h"
#include "tests/testing/in_process_cluster.h"
#include "worker/kv_worker.h"

namespace granary {
namespace {

constexpr int kDim = 4;
constexpr float kLearningRate = 0.5f;

std::vector<uint64_t> HashedKeys(int n, const char* field) {
  std::vector<uint64_t> keys(n);
  const uint64_t seed = FieldSeed(field);
  for (int i = 0; i < n; ++i) keys[i] = FeatureKey(seed, std::to_string(i));
  return keys;
}

InProcessClusterOptions TwoServers(bool ipc) {
  InProcessClusterOptions options;
  options.num_servers = 2;
  options.config = SgdTablesConfig({{"emb", kDim}}, kLearningRate);
  options.ipc = ipc;
  return options;
}

bool AllStartWith(const std::vector<std::string>& endpoints, const std::string& scheme) {
  return !endpoints.empty() &&
         std::all_of(endpoints.begin(), endpoints.end(), [&](const std::string& endpoint) {
           return absl::StartsWith(endpoint, scheme);
         });
}

// Three pushes of distinct gradients (the last with repeated, unsorted keys, which the worker
// sums) over both servers, then the rows pulled back.
std::vector<float> TrainAndPull(KVWorker& worker) {
  const std::vector<uint64_t> keys = HashedKeys(500, "ipc");
  for (int round = 0; round < 2; ++round) {
    std::vector<float> grads(keys.size() * kDim);
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i + round);
    EXPECT_TRUE(worker.Wait(worker.Push("emb", keys, grads)).ok());
  }
  const std::vector<uint64_t> repeated = {keys[7], keys[3], keys[7], keys[499]};
  EXPECT_TRUE(
      worker.Wait(worker.Push("emb", repeated, std::vector<float>(repeated.size() * kDim, 1)))
          .ok());
  std::vector<float> rows;
  EXPECT_TRUE(worker.Wait(worker.Pull("emb", keys, &rows)).ok());
  return rows;
}

TEST(KVWorkerIpcTest, SameHostWorkersConnectOverIpcAndTrainExactlyWhatTcpTrains) {
  InProcessCluster over_ipc(TwoServers(/*ipc=*/true));
  InProcessCluster over_tcp(TwoServers(/*ipc=*/false));
  ASSERT_TRUE(over_ipc.Start().ok());
  ASSERT_TRUE(over_tcp.Start().ok());
  EXPECT_TRUE(AllStartWith(over_ipc.worker(0).server_endpoints(), "ipc://"));
  EXPECT_TRUE(AllStartWith(over_tcp.worker(0).server_endpoints(), "tcp://"));
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(over_ipc.worker(0).server_endpoints()[s], over_ipc.server(s).ipc_endpoint());
    EXPECT_TRUE(over_tcp.server(s).ipc_endpoint().empty());
  }

  const std::vector<float> ipc_rows = TrainAndPull(over_ipc.worker(0));
  const std::vector<float> tcp_rows = TrainAndPull(over_tcp.worker(0));
  ASSERT_EQ(ipc_rows.size(), 500u * kDim);
  EXPECT_EQ(ipc_rows, tcp_rows);
  // Row 7, dim 0: -rate x (its two round gradients + twice 1 from the repeated push).
  const float row7 = -kLearningRate * (0.001f * 28 + 0.001f * 29 + 2);
  EXPECT_NEAR(ipc_rows[7 * kDim], row7, 1e-6f);
}

// The same server seen from a worker with ipc off, and from one "on another host" (a view
// whose server host id differs): both connect over TCP and get the same rows.
TEST(KVWorkerIpcTest, WorkersWithIpcOffOrOnAnotherHostUseTcp) {
  InProcessCluster cluster(TwoServers(/*ipc=*/true));
  ASSERT_TRUE(cluster.Start().ok());
  const std::vector<float> rows = TrainAndPull(cluster.worker(0));

  const proto::ClusterView& view = cluster.worker_client(0).view();
  KVWorkerOptions ipc_off;
  ipc_off.cluster_id = InProcessClusterOptions().cluster_id;
  ipc_off.use_ipc = false;
  proto::ClusterView elsewhere = view;
  for (proto::NodeInfo& node : *elsewhere.mutable_nodes()) node.set_host_id("other-boot/other");
  KVWorkerOptions ipc_on = ipc_off;
  ipc_on.use_ipc = true;
  KVWorker off_worker(&cluster.context(), view, ipc_off);
  KVWorker remote_worker(&cluster.context(), elsewhere, ipc_on);
  for (KVWorker* worker : {&off_worker, &remote_worker}) {
    ASSERT_TRUE(worker->Start().ok());
    EXPECT_TRUE(AllStartWith(worker->server_endpoints(), "tcp://"));
    std::vector<float> pulled;
    ASSERT_TRUE(worker->Wait(worker->Pull("emb", HashedKeys(500, "ipc"), &pulled)).ok());
    EXPECT_EQ(pulled, rows);
  }
}

// CURVE is the socket's, not the transport's: an authenticated cluster's workers train over
// ipc, and its socket file admits only holders of the cluster keypair.
TEST(KVWorkerIpcTest, CurveGuardsTheIpcEndpointAsItGuardsTcp) {
  const CurveKeys keys = NewCurveKeys();
  InProcessClusterOptions options = TwoServers(/*ipc=*/true);
  options.curve = keys;
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  EXPECT_TRUE(AllStartWith(cluster.worker(0).server_endpoints(), "ipc://"));
  InProcessCluster over_tcp(TwoServers(/*ipc=*/false));
  ASSERT_TRUE(over_tcp.Start().ok());
  EXPECT_EQ(TrainAndPull(cluster.worker(0)), TrainAndPull(over_tcp.worker(0)));

  ExpectOnlyKeyHoldersAnswered(cluster.context(), cluster.server(0).ipc_endpoint(), keys);
}

}  // namespace
}  // namespace granary
