// Consistent checkpoints and the roll-back to the newest one, on an in-process cluster: a run
// that stops (as after a crash) and starts again with the same folders must hold exactly the
// state of its newest manifest, and hand out again only the chunks finished after it.
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "scheduler/checkpoint_store.h"
#include "tests/testing/in_process_cluster.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(20);

proto::WorkQueueSpec Chunks(int n) {
  proto::WorkQueueSpec spec;
  spec.set_name("day-1");
  for (int i = 0; i < n; ++i) {
    proto::Chunk* chunk = spec.add_chunks();
    chunk->set_id(i);
    chunk->set_file(absl::StrCat("part-", i));
  }
  return spec;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    checkpoint_root_ = MakeTempDir("granary-ckpt");
    data_dir_ = MakeTempDir("granary-ckpt-data");
    ASSERT_FALSE(checkpoint_root_.empty() || data_dir_.empty());
    for (int i = 0; i < 200; ++i) keys_.push_back(FeatureKey(FieldSeed("k"), std::to_string(i)));
    std::sort(keys_.begin(), keys_.end());
  }
  void TearDown() override {
    std::filesystem::remove_all(checkpoint_root_);
    std::filesystem::remove_all(data_dir_);
  }

  std::unique_ptr<InProcessCluster> StartCluster(int every_chunks = 1,
                                                 absl::Duration every = absl::ZeroDuration()) {
    InProcessClusterOptions options;
    options.num_servers = 2;
    options.num_workers = 1;
    options.config = SgdTablesConfig({{"emb", 2}}, 1.0f);
    options.data_dir = data_dir_;
    options.checkpoint_dir = checkpoint_root_;
    options.checkpoint_every_chunks = every_chunks;
    options.checkpoint_every = every;
    auto cluster = std::make_unique<InProcessCluster>(options);
    absl::Status status = cluster->Start();
    EXPECT_TRUE(status.ok()) << status;
    return cluster;
  }

  // Trains "chunk" `id`: pushes a gradient of 1 to every key (SGD, lr 1: rows fall by 1).
  void TrainChunk(InProcessCluster& cluster, uint64_t expected_id, bool finish) {
    absl::StatusOr<std::optional<proto::Chunk>> chunk =
        cluster.worker_client(0).NextChunk("day-1", kTimeout);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    ASSERT_TRUE(chunk->has_value());
    ASSERT_EQ((*chunk)->id(), expected_id);
    std::vector<float> grads(keys_.size() * 2, 1.0f);
    ASSERT_TRUE(cluster.worker(0).Wait(cluster.worker(0).Push("emb", keys_, grads)).ok());
    if (finish) {
      ASSERT_TRUE(cluster.worker_client(0).FinishChunk("day-1", expected_id, kTimeout).ok());
    }
  }

  // Waits until checkpoint `id` has its manifest.
  std::optional<proto::CheckpointManifest> WaitForManifest(uint64_t id) {
    CheckpointStore store(checkpoint_root_);
    for (int i = 0; i < 400; ++i) {
      absl::StatusOr<std::optional<proto::CheckpointManifest>> newest = store.Newest();
      if (newest.ok() && newest->has_value() && (*newest)->id() >= id) return *newest;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }

  float RowValue(InProcessCluster& cluster) {
    std::vector<float> rows;
    absl::Status status =
        cluster.worker(0).Wait(cluster.worker(0).Pull("emb", keys_, &rows, PullMode::kEvaluate));
    EXPECT_TRUE(status.ok()) << status;
    for (float value : rows) EXPECT_EQ(value, rows[0]);
    return rows.empty() ? NAN : rows[0];
  }

  std::string checkpoint_root_;
  std::string data_dir_;
  std::vector<uint64_t> keys_;
};

TEST_F(CheckpointTest, RestartRollsBackToTheNewestManifestAndRequeuesUnfinishedChunks) {
  {
    std::unique_ptr<InProcessCluster> cluster = StartCluster();
    ASSERT_TRUE(cluster->worker_client(0).OpenQueue(Chunks(3), kTimeout).ok());
    TrainChunk(*cluster, 0, /*finish=*/true);
    std::optional<proto::CheckpointManifest> manifest = WaitForManifest(1);
    ASSERT_TRUE(manifest.has_value());
    ASSERT_EQ(manifest->queues_size(), 1);
    EXPECT_EQ(manifest->queues(0).spec().name(), "day-1");
    ASSERT_EQ(manifest->queues(0).finished_size(), 1);
    EXPECT_EQ(manifest->queues(0).finished(0), 0u);
    EXPECT_TRUE(std::filesystem::exists(CheckpointStore(checkpoint_root_).DirOf(1) + "/server-1"));
    // Chunk 1 is trained but not finished when the run stops: it never happened.
    TrainChunk(*cluster, 1, /*finish=*/false);
    EXPECT_EQ(RowValue(*cluster), -2.0f);
  }
  std::unique_ptr<InProcessCluster> restarted = StartCluster();
  EXPECT_EQ(RowValue(*restarted), -1.0f);
  ASSERT_TRUE(restarted->worker_client(0).OpenQueue(Chunks(3), kTimeout).ok());
  TrainChunk(*restarted, 1, /*finish=*/true);
  TrainChunk(*restarted, 2, /*finish=*/true);
  absl::StatusOr<std::optional<proto::Chunk>> drained =
      restarted->worker_client(0).NextChunk("day-1", kTimeout);
  ASSERT_TRUE(drained.ok()) << drained.status();
  EXPECT_FALSE(drained->has_value());
  EXPECT_EQ(RowValue(*restarted), -3.0f);  // every chunk exactly once
}

TEST_F(CheckpointTest, RunWithoutACheckpointStartsFromEmptyTables) {
  {
    std::unique_ptr<InProcessCluster> cluster = StartCluster();
    ASSERT_TRUE(cluster->worker_client(0).OpenQueue(Chunks(2), kTimeout).ok());
    TrainChunk(*cluster, 0, /*finish=*/false);
    EXPECT_EQ(RowValue(*cluster), -1.0f);
  }
  std::unique_ptr<InProcessCluster> restarted = StartCluster();
  EXPECT_EQ(RowValue(*restarted), 0.0f);
}

TEST_F(CheckpointTest, QueueWithOtherChunksThanTheManifestIsRefused) {
  {
    std::unique_ptr<InProcessCluster> cluster = StartCluster();
    ASSERT_TRUE(cluster->worker_client(0).OpenQueue(Chunks(2), kTimeout).ok());
    TrainChunk(*cluster, 0, /*finish=*/true);
    ASSERT_TRUE(WaitForManifest(1).has_value());
  }
  std::unique_ptr<InProcessCluster> restarted = StartCluster();
  absl::Status status = restarted->worker_client(0).OpenQueue(Chunks(5), kTimeout);
  ASSERT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("work queue 'day-1' has other chunks than in checkpoint"),
            std::string::npos)
      << status;
}

// A server that cannot write its part fails the checkpoint: no manifest, the run goes on, and
// the next checkpoint succeeds.
TEST_F(CheckpointTest, FailedCheckpointWritesNoManifestAndTheRunGoesOn) {
  std::unique_ptr<InProcessCluster> cluster = StartCluster();
  CheckpointStore store(checkpoint_root_);
  // Server 0's part of checkpoint 1 exists already, so RocksDB refuses to write it.
  std::filesystem::create_directories(store.DirOf(1) + "/server-0");
  ASSERT_TRUE(cluster->worker_client(0).OpenQueue(Chunks(2), kTimeout).ok());
  TrainChunk(*cluster, 0, /*finish=*/true);
  TrainChunk(*cluster, 1, /*finish=*/true);  // handed out once checkpoint 1 gave up
  std::optional<proto::CheckpointManifest> manifest = WaitForManifest(2);
  ASSERT_TRUE(manifest.has_value());
  EXPECT_EQ(manifest->id(), 2u);
  EXPECT_EQ(manifest->queues(0).finished_size(), 2);
  EXPECT_FALSE(std::filesystem::exists(store.DirOf(1) + "/MANIFEST"));
}

// --checkpoint_every_minutes: once the interval passed with progress to save, a checkpoint
// is taken without waiting for a chunk count; with no new progress, none.
TEST_F(CheckpointTest, CheckpointsByTimeOnlyWhenThereIsProgress) {
  std::unique_ptr<InProcessCluster> cluster =
      StartCluster(/*every_chunks=*/0, /*every=*/absl::Milliseconds(300));
  ASSERT_TRUE(cluster->worker_client(0).OpenQueue(Chunks(3), kTimeout).ok());
  TrainChunk(*cluster, 0, /*finish=*/true);
  std::optional<proto::CheckpointManifest> manifest = WaitForManifest(1);
  ASSERT_TRUE(manifest.has_value());
  EXPECT_NE(manifest->reason().find("passed"), std::string::npos) << manifest->reason();
  absl::SleepFor(absl::Seconds(1));  // three intervals without a finished chunk
  EXPECT_FALSE(std::filesystem::exists(CheckpointStore(checkpoint_root_).DirOf(2)));
}

TEST(CheckpointStartTest, UnreadableNewestManifestStopsTheSchedulerNamingIt) {
  std::string root = MakeTempDir("granary-ckpt-corrupt");
  ASSERT_FALSE(root.empty());
  CheckpointStore store(root);
  ASSERT_TRUE(store.Prepare(1).ok());
  std::ofstream(store.DirOf(1) + "/MANIFEST") << "id: [oops";
  zmq::context_t context(1);
  SchedulerOptions options;
  options.checkpoint_dir = root;
  Scheduler scheduler(&context, options);
  absl::Status status = scheduler.Run();
  ASSERT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find(store.DirOf(1) + "/MANIFEST"), std::string::npos) << status;
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace granary
