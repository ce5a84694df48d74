#include "worker/kv_worker.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "common/message.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/curve_router.h"
#include "tests/testing/in_process_cluster.h"

namespace granary {
namespace {

std::vector<uint64_t> HashedKeys(int n, const char* field) {
  std::vector<uint64_t> keys(n);
  uint64_t seed = FieldSeed(field);
  for (int i = 0; i < n; ++i) keys[i] = FeatureKey(seed, std::to_string(i));
  return keys;
}

class KVWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InProcessClusterOptions options;
    options.num_servers = 2;
    options.num_workers = 2;
    options.config = SgdTablesConfig({{"emb", 4}, {"bias", 1}}, 0.5f);
    cluster_ = std::make_unique<InProcessCluster>(options);
    ASSERT_TRUE(cluster_->Start().ok());
  }
  std::unique_ptr<InProcessCluster> cluster_;
};

TEST_F(KVWorkerTest, PullReturnsRowsInCallerOrderWithRepeats) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> keys = HashedKeys(100, "a");
  // Give each key a distinct row: row of key i = -0.5 * (i, i+1, i+2, i+3).
  std::vector<float> grads(keys.size() * 4);
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int d = 0; d < 4; ++d) grads[i * 4 + d] = static_cast<float>(i + d);
  }
  ASSERT_TRUE(worker.Wait(worker.Push("emb", keys, grads)).ok());

  std::vector<size_t> order = {99, 3, 3, 0, 57, 99, 12};
  std::vector<uint64_t> asked;
  for (size_t i : order) asked.push_back(keys[i]);
  std::vector<float> rows;
  absl::Status status = worker.Wait(worker.Pull("emb", asked, &rows));
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(rows.size(), order.size() * 4);
  for (size_t j = 0; j < order.size(); ++j) {
    for (int d = 0; d < 4; ++d) EXPECT_EQ(rows[j * 4 + d], -0.5f * (order[j] + d));
  }
}

// IsSortedUnique checks blocks of 1,024 keys: a list out of order only far past the first
// block must still be sorted before slicing, or a key would be routed to the wrong server.
TEST_F(KVWorkerTest, KeysOutOfOrderLateInALongListAreRoutedRight) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> keys = HashedKeys(12000, "late");
  std::sort(keys.begin(), keys.end());
  std::swap(keys[4000], keys.back());  // a key of server 0 and one of server 1 trade places
  std::vector<float> grads(keys.size() * 4);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = static_cast<float>(i / 4);
  absl::Status pushed = worker.Wait(worker.Push("emb", keys, grads));
  ASSERT_TRUE(pushed.ok()) << pushed;
  std::vector<float> rows;
  absl::Status pulled = worker.Wait(worker.Pull("emb", keys, &rows));
  ASSERT_TRUE(pulled.ok()) << pulled;
  ASSERT_EQ(rows.size(), grads.size());
  for (size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(rows[i], -0.5f * grads[i]) << i;
}

TEST_F(KVWorkerTest, PushSumsGradientsOfRepeatedKeys) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> keys = {7, 7, 3};
  std::vector<float> grads = {1, 2, 4};
  ASSERT_TRUE(worker.Wait(worker.Push("bias", keys, grads)).ok());
  std::vector<float> rows;
  std::vector<uint64_t> pulled = {3, 7};
  ASSERT_TRUE(worker.Wait(worker.Pull("bias", pulled, &rows)).ok());
  EXPECT_EQ(rows, (std::vector<float>{-2.0f, -1.5f}));
}

TEST_F(KVWorkerTest, KeysAreSplitAcrossBothServers) {
  KVWorker& worker = cluster_->worker(1);
  std::vector<uint64_t> keys = HashedKeys(1000, "split");
  std::vector<float> grads(keys.size() * 4, 1.0f);
  ASSERT_TRUE(worker.Wait(worker.Push("emb", keys, grads)).ok());
  size_t on_server_0 = cluster_->server(0).catalog()->Find("emb")->stats().cached_rows;
  size_t on_server_1 = cluster_->server(1).catalog()->Find("emb")->stats().cached_rows;
  EXPECT_EQ(on_server_0 + on_server_1, keys.size());
  EXPECT_GT(on_server_0, 400u);
  EXPECT_GT(on_server_1, 400u);
}

TEST_F(KVWorkerTest, ConcurrentWorkersGiveExactSums) {
  std::vector<uint64_t> keys = HashedKeys(2000, "concurrent");
  constexpr int kRounds = 10;
  std::vector<std::thread> threads;
  std::vector<absl::Status> statuses(2);
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      std::vector<float> grads(keys.size() * 4, static_cast<float>(w + 1));
      std::vector<int64_t> ids;
      for (int r = 0; r < kRounds; ++r) ids.push_back(cluster_->worker(w).Push("emb", keys, grads));
      for (int64_t id : ids) {
        absl::Status status = cluster_->worker(w).Wait(id);
        if (!status.ok()) statuses[w] = status;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) ASSERT_TRUE(status.ok()) << status;
  std::vector<float> rows;
  ASSERT_TRUE(cluster_->worker(0).Wait(cluster_->worker(0).Pull("emb", keys, &rows)).ok());
  for (float v : rows) ASSERT_EQ(v, -0.5f * kRounds * (1 + 2));
}

// Requests are answered on the channel of the thread that sent them; whoever waits receives
// there. Waiting in another order, or on another thread, must still give every request its
// own rows.
TEST_F(KVWorkerTest, RequestsMayBeWaitedInAnyOrderAndOnAnyThread) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> keys = HashedKeys(300, "any-thread");
  std::vector<float> grads(keys.size() * 4);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = static_cast<float>(i % 7);
  ASSERT_TRUE(worker.Wait(worker.Push("emb", keys, grads)).ok());

  std::vector<float> first, second, third;
  int64_t first_id = worker.Pull("emb", keys, &first);
  int64_t second_id = worker.Pull("emb", keys, &second);
  int64_t third_id = worker.Pull("emb", keys, &third);
  ASSERT_TRUE(worker.Wait(third_id).ok());  // receives the others' replies on the way
  absl::Status on_other_thread;
  std::thread([&] { on_other_thread = worker.Wait(first_id); }).join();
  ASSERT_TRUE(on_other_thread.ok()) << on_other_thread;
  ASSERT_TRUE(worker.Wait(second_id).ok());
  for (size_t i = 0; i < grads.size(); ++i) {
    ASSERT_EQ(first[i], -0.5f * grads[i]) << i;
    ASSERT_EQ(second[i], first[i]) << i;
    ASSERT_EQ(third[i], first[i]) << i;
  }
  EXPECT_TRUE(absl::IsNotFound(worker.Wait(first_id)));  // each id is waited once
}

// More threads than channels: threads share channels, send and receive in turns, and one
// waiting on a shared channel also completes the other threads' requests.
TEST(KVWorkerChannelTest, ThreadsSharingOneChannelGiveExactSums) {
  InProcessClusterOptions options;
  options.num_servers = 2;
  options.config = SgdTablesConfig({{"emb", 4}}, 0.5f);
  options.max_channels = 1;
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  KVWorker& worker = cluster.worker(0);
  std::vector<uint64_t> keys = HashedKeys(1000, "shared");
  constexpr int kThreads = 4;
  constexpr int kRounds = 20;
  std::vector<absl::Status> statuses(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> grads(keys.size() * 4, 1.0f);
      std::vector<float> rows;
      for (int r = 0; r < kRounds && statuses[t].ok(); ++r) {
        int64_t push = worker.Push("emb", keys, grads);
        int64_t pull = worker.Pull("emb", keys, &rows);
        statuses[t] = worker.Wait(push);
        if (statuses[t].ok()) statuses[t] = worker.Wait(pull);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) ASSERT_TRUE(status.ok()) << status;
  std::vector<float> rows;
  ASSERT_TRUE(worker.Wait(worker.Pull("emb", keys, &rows)).ok());
  for (float v : rows) ASSERT_EQ(v, -0.5f * kThreads * kRounds);
}

TEST_F(KVWorkerTest, BadRequestsFailWithoutReachingServers) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> keys = {1, 2};
  std::vector<float> rows;
  absl::Status unknown = worker.Wait(worker.Pull("nope", keys, &rows));
  EXPECT_TRUE(absl::IsNotFound(unknown));
  EXPECT_NE(unknown.message().find("table 'nope'"), std::string::npos);
  std::vector<float> short_grads = {1.0f};
  absl::Status wrong_size = worker.Wait(worker.Push("emb", keys, short_grads));
  EXPECT_TRUE(absl::IsInvalidArgument(wrong_size));
  EXPECT_TRUE(absl::IsNotFound(worker.Wait(12345)));
  // An empty request completes at once.
  EXPECT_TRUE(worker.Wait(worker.Pull("emb", {}, &rows)).ok());
  EXPECT_TRUE(rows.empty());
}

TEST_F(KVWorkerTest, DeadServerFailsOutstandingAndLaterRequests) {
  KVWorker& worker = cluster_->worker(0);
  worker.MarkServerDead(1, "killed in a test");
  std::vector<uint64_t> keys = HashedKeys(100, "dead");
  std::vector<float> rows;
  absl::Status status = worker.Wait(worker.Pull("emb", keys, &rows));
  ASSERT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("server 1"), std::string::npos);
  EXPECT_NE(status.message().find("killed in a test"), std::string::npos);
}

TEST(KVWorkerDenseTest, DenseVectorIsSlicedAcrossServersAndRoundTrips) {
  InProcessClusterOptions options;
  options.num_servers = 2;
  options.num_workers = 1;
  options.config = SgdTablesConfig({{"mlp", 4}}, 0.5f);
  options.config.mutable_tables(0)->set_dense_size(1001);  // 251 blocks, the last padded
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  KVWorker& worker = cluster.worker(0);
  ASSERT_EQ(worker.DensePaddedSize("mlp"), 1004u);
  std::vector<float> grads(1001);
  for (int i = 0; i < 1001; ++i) grads[i] = static_cast<float>(i);
  ASSERT_TRUE(worker.Wait(worker.PushDense("mlp", grads)).ok());
  std::vector<float> values;
  ASSERT_TRUE(worker.Wait(worker.PullDense("mlp", &values)).ok());
  ASSERT_EQ(values.size(), 1004u);
  for (int i = 0; i < 1001; ++i) ASSERT_EQ(values[i], -0.5f * i);
  for (int i = 1001; i < 1004; ++i) EXPECT_EQ(values[i], 0.0f);
  // Both servers hold blocks.
  EXPECT_GT(cluster.server(0).catalog()->Find("mlp")->stats().cached_rows, 50u);
  EXPECT_GT(cluster.server(1).catalog()->Find("mlp")->stats().cached_rows, 50u);
  std::vector<float> wrong_size(10);
  EXPECT_TRUE(absl::IsInvalidArgument(worker.Wait(worker.PushDense("mlp", wrong_size))));
  EXPECT_TRUE(absl::IsNotFound(worker.Wait(worker.PullDense("nope", &values))));
}

// A table on the light wire (fp16 pulls, int8 pushes with error feedback) over two servers:
// after many pushes of small gradients each row holds -lr x their sum to within one int8 step
// of the last push plus fp16 rounding, where int8 alone would have sent zeros.
TEST(KVWorkerWireTest, LightWireTrainsWhatFp32Would) {
  InProcessClusterOptions options;
  options.num_servers = 2;
  options.num_workers = 1;
  options.config = SgdTablesConfig({{"emb", 16}, {"mlp", 4}}, 1.0f);
  for (int t = 0; t < 2; ++t) {
    proto::WireConfig* wire = options.config.mutable_tables(t)->mutable_wire();
    wire->set_pull_values(proto::VALUES_FP16);
    wire->set_push_values(proto::VALUES_INT8);
  }
  options.config.mutable_tables(1)->set_dense_size(10);
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  KVWorker& worker = cluster.worker(0);
  EXPECT_EQ(worker.PullRowBytes("emb"), 32u);
  EXPECT_EQ(worker.PushRowBytes("emb"), 20u);
  std::vector<uint64_t> keys = HashedKeys(300, "wire");
  keys.push_back(keys[5]);  // a repeat: its gradients are summed before encoding
  constexpr int kSteps = 50;
  std::vector<float> grads(keys.size() * 16);
  for (size_t i = 0; i < grads.size(); ++i) {
    // One element of 1 per row sets the int8 step (1/127); the rest are far below half of it.
    grads[i] = i % 16 == 0 ? 1.0f : 0.0005f * static_cast<float>(i % 7);
  }
  for (int step = 0; step < kSteps; ++step) {
    absl::Status pushed = worker.Wait(worker.Push("emb", keys, grads));
    ASSERT_TRUE(pushed.ok()) << pushed;
  }
  std::vector<float> rows;
  absl::Status pulled = worker.Wait(worker.Pull("emb", keys, &rows));
  ASSERT_TRUE(pulled.ok()) << pulled;
  ASSERT_EQ(rows.size(), grads.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const bool repeated = keys[i] == keys[5];
    const float repeats = repeated ? 2.0f : 1.0f;
    for (size_t d = 0; d < 16; ++d) {
      const float pushed = repeated ? grads[5 * 16 + d] + grads[300 * 16 + d] : grads[i * 16 + d];
      const float trained = -kSteps * pushed;
      ASSERT_NEAR(rows[i * 16 + d], trained, repeats / 127 + std::fabs(trained) / 1024)
          << "key " << i << " dim " << d;
    }
  }
  // A non-finite gradient reaches the server as non-finite (an int8 row of NaN) and the push is
  // refused whole, as on fp32: the row keeps what it held.
  const std::vector<uint64_t> first = {keys[0]};
  std::vector<float> poisoned(16, 0.5f);
  poisoned[3] = std::numeric_limits<float>::infinity();
  const absl::Status refused = worker.Wait(worker.Push("emb", first, poisoned));
  EXPECT_NE(refused.message().find("non-finite gradient"), std::string::npos) << refused;
  std::vector<float> row;
  ASSERT_TRUE(worker.Wait(worker.Pull("emb", first, &row)).ok());
  EXPECT_EQ(row, std::vector<float>(rows.begin(), rows.begin() + 16));
  // A dense table on the same wire.
  std::vector<float> dense_grads(10, 0.25f);
  ASSERT_TRUE(worker.Wait(worker.PushDense("mlp", dense_grads)).ok());
  std::vector<float> dense;
  ASSERT_TRUE(worker.Wait(worker.PullDense("mlp", &dense)).ok());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(dense[i], -0.25f) << i;
}

// Tables with Elias-Fano keys (TableConfig.wire.keys) over two servers train exactly as the
// same tables with raw keys: the same pushes of unsorted keys with repeats (and keys at the
// ends of the key space) leave bit-identical rows, and the key frames are smaller.
TEST(KVWorkerWireTest, EliasFanoKeysTrainExactlyAsRawKeys) {
  std::vector<uint64_t> keys = HashedKeys(2000, "keys");
  keys.push_back(keys[7]);  // a repeat
  keys.push_back(0);
  keys.push_back(std::numeric_limits<uint64_t>::max());
  std::reverse(keys.begin(), keys.end());  // unsorted
  std::vector<float> grads(keys.size() * 4);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.001f * static_cast<float>(i % 97);
  std::vector<float> dense_grads(10);
  for (int i = 0; i < 10; ++i) dense_grads[i] = 0.1f * static_cast<float>(i);

  std::vector<std::vector<float>> trained;
  std::vector<std::vector<float>> dense_trained;
  for (proto::KeyEncoding encoding : {proto::KEYS_RAW, proto::KEYS_ELIAS_FANO}) {
    InProcessClusterOptions options;
    options.num_servers = 2;
    options.num_workers = 1;
    options.config = SgdTablesConfig({{"emb", 4}, {"mlp", 2}}, 0.5f);
    options.config.mutable_tables(1)->set_dense_size(10);
    for (int t = 0; t < 2; ++t) {
      options.config.mutable_tables(t)->mutable_wire()->set_keys(encoding);
    }
    // The benchmark hook sees every part's sorted unique keys, only of encoded tables.
    std::atomic<size_t> observed_emb_keys{0};
    std::atomic<bool> observed_unsorted{false};
    options.on_encoded_keys = [&](const std::string& table, absl::Span<const uint64_t> part) {
      if (table == "emb") observed_emb_keys += part.size();
      for (size_t i = 1; i < part.size(); ++i)
        observed_unsorted = observed_unsorted || part[i] <= part[i - 1];
    };
    InProcessCluster cluster(options);
    ASSERT_TRUE(cluster.Start().ok());
    KVWorker& worker = cluster.worker(0);
    for (int step = 0; step < 3; ++step) {
      absl::Status pushed = worker.Wait(worker.Push("emb", keys, grads));
      ASSERT_TRUE(pushed.ok()) << pushed;
      ASSERT_TRUE(worker.Wait(worker.PushDense("mlp", dense_grads)).ok());
    }
    std::vector<float> rows;
    absl::Status pulled = worker.Wait(worker.Pull("emb", keys, &rows));
    ASSERT_TRUE(pulled.ok()) << pulled;
    std::vector<float> dense;
    ASSERT_TRUE(worker.Wait(worker.PullDense("mlp", &dense)).ok());
    trained.push_back(rows);
    dense_trained.push_back(dense);
    EXPECT_FALSE(observed_unsorted);
    // 3 pushes and a pull of the 2,002 unique keys.
    EXPECT_EQ(observed_emb_keys, encoding == proto::KEYS_RAW ? 0u : 4u * (keys.size() - 1));
    if (encoding == proto::KEYS_RAW) {
      EXPECT_EQ(worker.KeyBytesPerKey("emb"), 8.0);
    } else {
      // ~1,000 hashed keys per server: 2 + 64 - 10 bits a key.
      EXPECT_LT(worker.KeyBytesPerKey("emb"), 7.2);
      EXPECT_GT(worker.KeyBytesPerKey("emb"), 6.5);
    }
  }
  ASSERT_EQ(trained[0].size(), keys.size() * 4);
  EXPECT_EQ(trained[1], trained[0]);
  EXPECT_EQ(dense_trained[1], dense_trained[0]);
  // Trained at all: the repeated key took both of its gradients, -0.5 x 3 steps x their sum.
  const size_t repeat = keys.size() - 1 - 7;  // keys[7] before the reversal
  EXPECT_FLOAT_EQ(trained[1][repeat * 4 + 1], -1.5f * (grads[repeat * 4 + 1] + grads[2 * 4 + 1]));
}

// With keys the in-process cluster is authenticated as production is (ps_bench times it so):
// its workers round-trip exact rows over CURVE, and the servers' ZAP handler admits only
// holders of the cluster keypair.
TEST(KVWorkerCurveTest, AnAuthenticatedClusterRoundTripsExactRowsAndAdmitsOnlyItsMembers) {
  const CurveKeys keys = NewCurveKeys();
  InProcessClusterOptions options;
  options.num_servers = 1;
  options.config = SgdTablesConfig({{"emb", 4}}, 0.5f);
  options.curve = keys;
  InProcessCluster cluster(options);
  ASSERT_TRUE(cluster.Start().ok());
  KVWorker& worker = cluster.worker(0);
  std::vector<uint64_t> row_keys = HashedKeys(1000, "curve");
  std::vector<float> grads(row_keys.size() * 4, 1.0f);
  ASSERT_TRUE(worker.Wait(worker.Push("emb", row_keys, grads)).ok());
  std::vector<float> rows;
  ASSERT_TRUE(worker.Wait(worker.Pull("emb", row_keys, &rows)).ok());
  ASSERT_EQ(rows.size(), grads.size());
  for (float v : rows) ASSERT_EQ(v, -0.5f);

  proto::NodeInfo server;
  for (const proto::NodeInfo& node : cluster.worker_client(0).view().nodes()) {
    if (node.role() == proto::SERVER) server = node;
  }
  ExpectOnlyKeyHoldersAnswered(cluster.context(), TcpEndpoint(server.host(), server.port()), keys);
}

TEST_F(KVWorkerTest, EvaluationPullsLeaveTheModelUntouched) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> keys = HashedKeys(300, "eval");
  std::vector<float> rows;
  ASSERT_TRUE(worker.Wait(worker.Pull("emb", keys, &rows, PullMode::kEvaluate)).ok());
  for (float v : rows) EXPECT_EQ(v, 0.0f);
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(cluster_->server(s).catalog()->Find("emb")->stats().cached_rows, 0u);
  }
  ASSERT_TRUE(worker.Wait(worker.Pull("emb", keys, &rows, PullMode::kTrain)).ok());
  uint64_t cached = 0;
  for (int s = 0; s < 2; ++s) {
    cached += cluster_->server(s).catalog()->Find("emb")->stats().cached_rows;
  }
  EXPECT_EQ(cached, keys.size());
}

// A "server" that accepts requests and never answers, and the view of a worker that uses it.
// Pushes rows -0.5 x (i, i+1, i+2, i+3) for keys[i] into "emb" (dim 4, SGD rate 0.5).
void PushDistinctRows(KVWorker& worker, const std::vector<uint64_t>& keys) {
  std::vector<float> grads(keys.size() * 4);
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int d = 0; d < 4; ++d) grads[i * 4 + d] = static_cast<float>(i + d);
  }
  ASSERT_TRUE(worker.Wait(worker.Push("emb", keys, grads)).ok());
}

// Unsorted and repeated keys across both servers: the view shows, row by row, what the copying
// Pull returns, and CopyTo gives the same vector.
TEST_F(KVWorkerTest, PulledRowsShowTheCopyingPullsRowsForRepeatedUnsortedKeys) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> keys = HashedKeys(200, "view");
  PushDistinctRows(worker, keys);
  std::vector<uint64_t> asked;
  for (size_t i : {199, 3, 3, 0, 57, 199, 12, 150, 151}) asked.push_back(keys[i]);
  for (const std::vector<uint64_t>& request : {asked, keys}) {
    std::vector<float> copied;
    ASSERT_TRUE(worker.Wait(worker.Pull("emb", request, &copied)).ok());
    PulledRows rows;
    absl::Status status = worker.Wait(worker.Pull("emb", request, &rows));
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_EQ(rows.size(), request.size());
    ASSERT_EQ(rows.dim(), 4);
    EXPECT_FALSE(rows.contiguous());  // repeats, or keys on both servers
    for (size_t j = 0; j < request.size(); ++j) {
      ASSERT_EQ(rows.row(j).size(), 4u);
      for (int d = 0; d < 4; ++d) ASSERT_EQ(rows.row(j)[d], copied[j * 4 + d]) << j;
    }
    std::vector<float> via_view;
    rows.CopyTo(&via_view);
    EXPECT_EQ(via_view, copied);
  }
}

// A view holds the reply it came in: later pushes change the model, not the view, and it
// outlives the KVWorker that filled it. Sorted unique keys on one server give one array.
TEST_F(KVWorkerTest, PulledRowsStayValidAfterLaterRequestsAndTheWorker) {
  const std::vector<uint64_t> keys = {1, 2, 3};  // all in server 0's half of the key space
  PushDistinctRows(cluster_->worker(0), keys);
  KVWorkerOptions options;
  options.cluster_id = InProcessClusterOptions().cluster_id;
  auto worker =
      std::make_unique<KVWorker>(&cluster_->context(), cluster_->worker_client(1).view(), options);
  ASSERT_TRUE(worker->Start().ok());
  PulledRows rows;
  absl::Status pulled = worker->Wait(worker->Pull("emb", keys, &rows));
  ASSERT_TRUE(pulled.ok()) << pulled;
  ASSERT_TRUE(rows.contiguous());
  const float* data = rows.all().data();
  PulledRows moved = std::move(rows);
  EXPECT_EQ(moved.all().data(), data);  // moving the view moves no rows

  PulledRows other;
  ASSERT_TRUE(worker->Wait(worker->Pull("emb", keys, &other)).ok());
  std::vector<float> more(keys.size() * 4, 10.0f);
  ASSERT_TRUE(worker->Wait(worker->Push("emb", keys, more)).ok());
  std::vector<float> now;
  ASSERT_TRUE(worker->Wait(worker->Pull("emb", keys, &now)).ok());
  EXPECT_EQ(now[0], -5.0f);  // 0 - 0.5 x 0 - 0.5 x 10
  worker.reset();

  ASSERT_EQ(moved.all().size(), 12u);
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int d = 0; d < 4; ++d) {
      EXPECT_EQ(moved.all()[i * 4 + d], -0.5f * (i + d));
      EXPECT_EQ(moved.row(i)[d], -0.5f * (i + d));
      EXPECT_EQ(other.row(i)[d], -0.5f * (i + d));
    }
  }
}

// The zero-copy Push: shared arrays may be pushed again (each push applied), moved arrays with
// repeated unsorted keys are deduplicated and summed, and both reach both servers.
TEST_F(KVWorkerTest, ZeroCopyPushesApplyExactlyAcrossBothServers) {
  KVWorker& worker = cluster_->worker(0);
  std::vector<uint64_t> sorted = HashedKeys(1000, "zero-copy");
  std::sort(sorted.begin(), sorted.end());
  auto keys = std::make_shared<const std::vector<uint64_t>>(sorted);
  auto grads = std::make_shared<const std::vector<float>>(sorted.size() * 4, 1.0f);
  ASSERT_TRUE(worker.Wait(worker.Push("emb", keys, grads)).ok());
  ASSERT_TRUE(worker.Wait(worker.Push("emb", keys, grads)).ok());
  std::vector<uint64_t> repeated = {sorted[999], sorted[0], sorted[999]};
  std::vector<float> repeated_grads(12, 2.0f);
  ASSERT_TRUE(worker.Wait(worker.Push("emb", std::move(repeated), std::move(repeated_grads))).ok());
  std::vector<float> rows;
  ASSERT_TRUE(worker.Wait(worker.Pull("emb", sorted, &rows)).ok());
  for (size_t i = 0; i < sorted.size(); ++i) {
    const float expected = i == 999 ? -3.0f : i == 0 ? -2.0f : -1.0f;
    for (int d = 0; d < 4; ++d) ASSERT_EQ(rows[i * 4 + d], expected) << i;
  }
  EXPECT_GT(cluster_->server(0).catalog()->Find("emb")->stats().cached_rows, 400u);
  EXPECT_GT(cluster_->server(1).catalog()->Find("emb")->stats().cached_rows, 400u);
}

// The zero-copy Push (and Pull of shared keys) sends the caller's array itself: while its frames
// wait in ZeroMQ (here for a server that never accepts the connection) they hold references to the
// caller's arrays, which a copying Push would have dropped on return; the references go with the
// worker.
TEST(KVWorkerZeroCopyTest, PushAndPullHandTheCallersArraysToZeroMQ) {
  zmq::context_t context(1);
  int port = 0;
  {
    zmq::socket_t probe(context, zmq::socket_type::router);
    ConfigureSocket(probe);
    absl::StatusOr<int> bound = BindTcp(probe, "127.0.0.1", 0);
    ASSERT_TRUE(bound.ok());
    port = *bound;
  }  // closed: nothing listens on `port` now
  proto::ClusterView view;
  proto::NodeInfo* server = view.add_nodes();
  server->set_role(proto::SERVER);
  server->set_rank(0);
  server->set_host("127.0.0.1");
  server->set_port(port);
  *view.mutable_shard_map() = ShardMap::EvenSplit(1, 1).ToProto();
  *view.mutable_config() = SgdTablesConfig({{"emb", 2}}, 1.0f);
  view.mutable_you()->set_role(proto::WORKER);
  auto keys = std::make_shared<const std::vector<uint64_t>>(std::vector<uint64_t>{1, 5, 9});
  auto grads = std::make_shared<const std::vector<float>>(6, 1.0f);
  auto copied_keys = std::make_shared<const std::vector<uint64_t>>(*keys);
  {
    KVWorkerOptions options;
    options.request_timeout = absl::Milliseconds(100);
    KVWorker worker(&context, view, options);
    ASSERT_TRUE(worker.Start().ok());
    const int64_t shared = worker.Push("emb", keys, grads);
    EXPECT_EQ(keys.use_count(), 2);
    EXPECT_EQ(grads.use_count(), 2);
    PulledRows rows;
    const int64_t pulled = worker.Pull("emb", keys, &rows);
    EXPECT_EQ(keys.use_count(), 3);  // the pull's key frame too
    const int64_t copied = worker.Push("emb", absl::MakeConstSpan(*copied_keys), *grads);
    EXPECT_EQ(copied_keys.use_count(), 1);
    EXPECT_TRUE(absl::IsDeadlineExceeded(worker.Wait(shared)));
    EXPECT_TRUE(absl::IsDeadlineExceeded(worker.Wait(copied)));
    EXPECT_TRUE(absl::IsDeadlineExceeded(worker.Wait(pulled)));
  }
  // Closing the sockets (linger 0) frees their queued frames on ZeroMQ's own threads.
  for (int i = 0; i < 500 && (keys.use_count() > 1 || grads.use_count() > 1); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(keys.use_count(), 1);
  EXPECT_EQ(grads.use_count(), 1);
}

class SilentServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConfigureSocket(silent_);
    absl::StatusOr<int> port = BindTcp(silent_, "127.0.0.1", 0);
    ASSERT_TRUE(port.ok());
    port_ = *port;
    proto::NodeInfo* server = view_.add_nodes();
    server->set_role(proto::SERVER);
    server->set_rank(0);
    server->set_host("127.0.0.1");
    server->set_port(port_);
    *view_.mutable_shard_map() = ShardMap::EvenSplit(1, 1).ToProto();
    *view_.mutable_config() = SgdTablesConfig({{"emb", 2}}, 1.0f);
    view_.mutable_you()->set_role(proto::WORKER);
  }

  // Starts patient_, a worker whose requests to the silent server would wait kPatientTimeout.
  absl::Status StartPatientWorker() {
    KVWorkerOptions options;
    options.request_timeout = kPatientTimeout;
    patient_ = std::make_unique<KVWorker>(&context_, view_, options);
    return patient_->Start();
  }

  // Pulls kKeys with patient_ and waits for the reply while another thread runs `interrupt`
  // kInterruptAfter in; returns what the wait returned. The wait must end long before the
  // request's deadline.
  absl::Status PullInterruptedBy(const std::function<void()>& interrupt) {
    const int64_t request = patient_->Pull("emb", kKeys, &pulled_);
    const absl::Time start = absl::Now();
    std::thread interrupter([&] {
      absl::SleepFor(kInterruptAfter);
      interrupt();
    });
    absl::Status status = patient_->Wait(request);
    interrupter.join();
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    return status;
  }

  static constexpr absl::Duration kPatientTimeout = absl::Seconds(60);
  static constexpr absl::Duration kInterruptAfter = absl::Milliseconds(100);
  const std::vector<uint64_t> kKeys = {1, 2, 3};

  zmq::context_t context_{1};
  zmq::socket_t silent_{context_, zmq::socket_type::router};
  int port_ = 0;
  proto::ClusterView view_;
  std::unique_ptr<KVWorker> patient_;
  std::vector<float> pulled_;
};

// A pull reply in another encoding than the table's (a server with another cluster config) is
// an error naming the server and the table, never rows misread.
TEST_F(SilentServerTest, AReplyInAnotherWireEncodingIsRefused) {
  view_.mutable_config()->mutable_tables(0)->mutable_wire()->set_pull_values(proto::VALUES_FP16);
  ASSERT_TRUE(StartPatientWorker().ok());
  const int64_t id = patient_->Pull("emb", kKeys, &pulled_);
  zmq::pollitem_t item{silent_.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_GT(zmq::poll(&item, 1, std::chrono::seconds(10)), 0);
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(silent_, std::back_inserter(frames)));
  zmq::message_t routing_id = std::move(frames[0]);
  frames.erase(frames.begin());
  Message request;
  ASSERT_TRUE(DecodeMessage(std::move(frames), "granary", "worker", &request).ok());
  EXPECT_EQ(request.header.value_encoding(), proto::VALUES_FP16);
  Message reply;
  reply.header = MakeReplyHeader(request.header, proto::PULL_REPLY, "granary", proto::SERVER, 0);
  reply.values = FrameFromVector(std::vector<float>(kKeys.size() * 2, 1.0f));  // fp32 rows
  ASSERT_TRUE(SendMessage(silent_, std::move(reply), &routing_id).ok());
  const absl::Status status = patient_->Wait(id);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find("(table 'emb')"), std::string::npos) << status;
  EXPECT_NE(status.message().find("expected VALUES_FP16"), std::string::npos) << status;
}

// Requests to the silent server must time out, naming it.
TEST_F(SilentServerTest, RequestTimesOutNamingTheServer) {
  KVWorkerOptions options;
  options.request_timeout = absl::Milliseconds(300);
  KVWorker worker(&context_, view_, options);
  ASSERT_TRUE(worker.Start().ok());
  std::vector<uint64_t> keys = {1, 2, 3};
  std::vector<float> rows;
  absl::Time start = absl::Now();
  absl::Status status = worker.Wait(worker.Pull("emb", keys, &rows));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_NE(status.message().find("pull request"), std::string::npos);
  EXPECT_NE(status.message().find(absl::StrCat("server 0 (127.0.0.1:", port_)), std::string::npos)
      << status;
}

// MarkServerDead must end a Wait already blocked on the dead server's reply, long before the
// request's own deadline.
TEST_F(SilentServerTest, ServerReportedDeadEndsAWaitInProgress) {
  ASSERT_TRUE(StartPatientWorker().ok());
  KVWorker& worker = *patient_;
  absl::Status status =
      PullInterruptedBy([&] { worker.MarkServerDead(0, "missed its heartbeats"); });
  ASSERT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("missed its heartbeats"), std::string::npos) << status;
}

// A fenced worker's waits end at once, with the reason, and it sends nothing more.
TEST_F(SilentServerTest, FenceEndsAWaitInProgressAndFailsLaterRequests) {
  ASSERT_TRUE(StartPatientWorker().ok());
  KVWorker& worker = *patient_;
  absl::Status status = PullInterruptedBy(
      [&] { worker.Fence("fenced: worker 0 incarnation 2 was declared dead by the scheduler"); });
  ASSERT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("was declared dead by the scheduler"), std::string::npos)
      << status;
  const std::vector<float> grads(kKeys.size() * worker.DimOf("emb"), 1.0f);
  status = worker.Wait(worker.Push("emb", kKeys, grads));
  ASSERT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("push request"), std::string::npos) << status;
}

}  // namespace
}  // namespace granary
