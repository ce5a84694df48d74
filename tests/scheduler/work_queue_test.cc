#include "scheduler/work_queue.h"

#include "gtest/gtest.h"

namespace granary {
namespace {

proto::WorkQueueSpec Spec(const std::string& name, int chunks) {
  proto::WorkQueueSpec spec;
  spec.set_name(name);
  for (int i = 0; i < chunks; ++i) {
    proto::Chunk* chunk = spec.add_chunks();
    chunk->set_id(i);
    chunk->set_file("part-" + std::to_string(i));
  }
  return spec;
}

WorkQueue MakeQueue(int chunks) {
  absl::StatusOr<WorkQueue> queue = WorkQueue::Create(Spec("day", chunks));
  EXPECT_TRUE(queue.ok()) << queue.status();
  return *std::move(queue);
}

TEST(WorkQueueTest, HandsOutEachChunkOnceInOrderUntilDrained) {
  WorkQueue queue = MakeQueue(3);
  std::optional<proto::Chunk> a = queue.Take(0);
  std::optional<proto::Chunk> b = queue.Take(1);
  std::optional<proto::Chunk> c = queue.Take(0);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->id(), 0u);
  EXPECT_EQ(b->id(), 1u);
  EXPECT_EQ(c->id(), 2u);
  EXPECT_EQ(c->file(), "part-2");
  EXPECT_FALSE(queue.Take(1).has_value());
  EXPECT_EQ(queue.num_in_flight(), 3u);
  EXPECT_FALSE(queue.drained());
  ASSERT_TRUE(queue.Finish(0, 0).ok());
  ASSERT_TRUE(queue.Finish(1, 1).ok());
  ASSERT_TRUE(queue.Finish(0, 2).ok());
  EXPECT_TRUE(queue.drained());
  EXPECT_EQ(queue.FinishedIds(), (std::vector<uint64_t>{0, 1, 2}));
}

TEST(WorkQueueTest, FinishingAChunkNotHeldIsRefusedNamingIt) {
  WorkQueue queue = MakeQueue(2);
  ASSERT_TRUE(queue.Take(0).has_value());
  absl::Status other = queue.Finish(1, 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(other));
  EXPECT_NE(other.message().find("work queue 'day': worker 1 finished chunk 0, which is handed "
                                 "to worker 0"),
            std::string::npos)
      << other;
  EXPECT_TRUE(absl::IsFailedPrecondition(queue.Finish(0, 1)));  // not handed out
  EXPECT_TRUE(absl::IsFailedPrecondition(queue.Finish(0, 7)));  // no such chunk
  ASSERT_TRUE(queue.Finish(0, 0).ok());
  absl::Status twice = queue.Finish(0, 0);
  EXPECT_NE(twice.message().find("already finished"), std::string::npos) << twice;
  EXPECT_EQ(queue.num_finished(), 1u);
}

TEST(WorkQueueTest, ChunksOfADeadWorkerGoBackToTheFrontInOrder) {
  WorkQueue queue = MakeQueue(5);
  ASSERT_EQ(queue.Take(0)->id(), 0u);
  ASSERT_EQ(queue.Take(1)->id(), 1u);
  ASSERT_EQ(queue.Take(0)->id(), 2u);
  ASSERT_TRUE(queue.Finish(0, 0).ok());
  EXPECT_EQ(queue.Requeue(0), 1);  // chunk 2; chunk 0 is finished and stays so
  EXPECT_EQ(queue.Requeue(0), 0);
  EXPECT_EQ(queue.Take(1)->id(), 2u);
  EXPECT_EQ(queue.Take(1)->id(), 3u);
  // The dead worker's late report must not count.
  EXPECT_TRUE(absl::IsFailedPrecondition(queue.Finish(0, 2)));
  EXPECT_EQ(queue.num_in_flight(), 3u);
  EXPECT_EQ(queue.num_pending(), 1u);
}

proto::ChunkProgress Progress(uint64_t chunk, uint64_t lines, uint64_t samples,
                              uint32_t in_flight) {
  proto::ChunkProgress progress;
  progress.set_queue("day");
  progress.set_chunk_id(chunk);
  progress.set_lines_done(lines);
  progress.set_samples_trained(samples);
  progress.set_batches_in_flight(in_flight);
  return progress;
}

TEST(WorkQueueTest, ARequeuedChunkResumesAtItsRecordedProgressAndCountsPartialBatches) {
  WorkQueue queue = MakeQueue(2);
  ASSERT_EQ(queue.Take(0)->skip_lines(), 0u);
  ASSERT_TRUE(queue.RecordProgress(0, Progress(0, 40, 38, 2)).ok());
  ASSERT_TRUE(queue.RecordProgress(0, Progress(0, 60, 57, 3)).ok());
  EXPECT_EQ(queue.Requeue(0), 1);
  std::optional<proto::Chunk> resumed = queue.Take(1);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->id(), 0u);
  EXPECT_EQ(resumed->skip_lines(), 60u);
  // The second worker counts its own samples from the resume point on.
  ASSERT_TRUE(queue.RecordProgress(1, Progress(0, 100, 40, 0)).ok());
  ASSERT_TRUE(queue.Finish(1, 0).ok());
  const WorkQueue::ChunkRecord& record = queue.record(0);
  EXPECT_EQ(record.samples_trained, 97u);
  EXPECT_EQ(record.partial_batches, 3u);
  EXPECT_EQ(record.resumed_from, 0);
  EXPECT_EQ(record.resumed_at, 60u);
  EXPECT_EQ(record.finished_by, 1);
  ASSERT_TRUE(queue.Take(1).has_value());
  ASSERT_TRUE(queue.RecordProgress(1, Progress(1, 10, 10, 0)).ok());
  ASSERT_TRUE(queue.Finish(1, 1).ok());
  proto::QueueTotals totals = queue.Totals();
  EXPECT_EQ(totals.samples_trained(), 107u);
  EXPECT_EQ(totals.requeued_chunks(), 1u);
  EXPECT_EQ(totals.partial_batches(), 3u);
}

TEST(WorkQueueTest, ImplausibleProgressIsRefusedNamingChunkAndWorkerAndChangesNothing) {
  proto::WorkQueueSpec spec = Spec("day", 2);
  spec.mutable_chunks(1)->set_begin(100);
  spec.mutable_chunks(1)->set_end(150);  // at most 50 lines
  absl::StatusOr<WorkQueue> created = WorkQueue::Create(spec);
  ASSERT_TRUE(created.ok()) << created.status();
  WorkQueue& queue = *created;
  ASSERT_TRUE(queue.Take(0).has_value());
  ASSERT_TRUE(queue.Take(0).has_value());
  ASSERT_TRUE(queue.RecordProgress(0, Progress(0, 30, 30, 1)).ok());
  absl::Status other = queue.RecordProgress(1, Progress(0, 40, 40, 0));
  EXPECT_TRUE(absl::IsInvalidArgument(other));
  EXPECT_NE(other.message().find("progress of chunk 0 from worker 1 ignored: the chunk is not "
                                 "handed to that worker"),
            std::string::npos)
      << other;
  EXPECT_FALSE(queue.RecordProgress(0, Progress(0, 20, 20, 0)).ok());  // goes back
  EXPECT_FALSE(queue.RecordProgress(0, Progress(0, 35, 36, 0)).ok());  // more samples than lines
  EXPECT_FALSE(queue.RecordProgress(0, Progress(0, 35, 29, 0)).ok());  // samples go back
  EXPECT_FALSE(queue.RecordProgress(0, Progress(7, 35, 30, 0)).ok());  // no such chunk
  EXPECT_FALSE(queue.RecordProgress(0, Progress(1, 51, 0, 0)).ok());   // beyond its bytes
  EXPECT_FALSE(queue.RecordProgress(0, Progress(1, 10, 0, 41)).ok());  // batches beyond its bytes
  EXPECT_TRUE(queue.RecordProgress(0, Progress(1, 50, 50, 0)).ok());
  EXPECT_EQ(queue.record(0).lines_done, 30u);
  EXPECT_EQ(queue.record(0).samples_trained, 30u);
  EXPECT_EQ(queue.record(0).batches_in_flight, 1u);
  // A spec may not set skip_lines: only the scheduler does, when a chunk resumes.
  spec.mutable_chunks(0)->set_skip_lines(3);
  EXPECT_TRUE(absl::IsInvalidArgument(WorkQueue::Create(spec).status()));
}

TEST(WorkQueueTest, PausedQueueHandsOutNothingButFinishesWhatIsOut) {
  WorkQueue queue = MakeQueue(2);
  ASSERT_TRUE(queue.Take(0).has_value());
  queue.set_paused(true);
  EXPECT_FALSE(queue.Take(1).has_value());
  EXPECT_TRUE(queue.Finish(0, 0).ok());
  queue.set_paused(false);
  EXPECT_EQ(queue.Take(1)->id(), 1u);
}

TEST(WorkQueueTest, RestoredFinishedChunksAreNeverHandedOut) {
  WorkQueue queue = MakeQueue(4);
  ASSERT_TRUE(queue.RestoreFinished({0, 2}).ok());
  EXPECT_EQ(queue.num_finished(), 2u);
  EXPECT_EQ(queue.Take(0)->id(), 1u);
  EXPECT_EQ(queue.Take(0)->id(), 3u);
  EXPECT_FALSE(queue.Take(0).has_value());
  absl::Status unknown = queue.RestoreFinished({9});
  EXPECT_TRUE(absl::IsInvalidArgument(unknown));
  EXPECT_NE(unknown.message().find("no chunk 9"), std::string::npos) << unknown;
}

WorkQueue MakeRoundRobinQueue(int chunks, int workers) {
  proto::WorkQueueSpec spec = Spec("epoch", chunks);
  spec.set_assignment(proto::WorkQueueSpec::ROUND_ROBIN);
  spec.set_num_workers(workers);
  absl::StatusOr<WorkQueue> queue = WorkQueue::Create(spec);
  EXPECT_TRUE(queue.ok()) << queue.status();
  return *std::move(queue);
}

// The ids `worker` takes until it gets none.
std::vector<uint64_t> TakeAll(WorkQueue& queue, int worker) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 100; ++i) {  // bounded
    std::optional<proto::Chunk> chunk = queue.Take(worker);
    if (!chunk) break;
    ids.push_back(chunk->id());
  }
  return ids;
}

// Whoever asks first, chunk i goes to worker i % 3, each worker's in order; a worker whose
// chunks are all out gets none while the others' are pending.
TEST(WorkQueueTest, RoundRobinDealsChunkIToWorkerIModNInOrder) {
  WorkQueue queue = MakeRoundRobinQueue(8, 3);
  EXPECT_EQ(queue.Take(2)->id(), 2u);
  EXPECT_EQ(TakeAll(queue, 1), (std::vector<uint64_t>{1, 4, 7}));
  EXPECT_EQ(queue.num_pending(), 4u);  // 0, 3, 6 and 5
  EXPECT_EQ(TakeAll(queue, 0), (std::vector<uint64_t>{0, 3, 6}));
  EXPECT_EQ(TakeAll(queue, 2), (std::vector<uint64_t>{5}));
  EXPECT_EQ(queue.num_pending(), 0u);
}

// After a roll-back the remaining chunks go where they went in the run without it.
TEST(WorkQueueTest, RoundRobinKeepsTheAssignmentOfChunksLeftByACheckpoint) {
  WorkQueue queue = MakeRoundRobinQueue(7, 2);
  ASSERT_TRUE(queue.RestoreFinished({0, 1, 3}).ok());
  EXPECT_EQ(TakeAll(queue, 1), (std::vector<uint64_t>{5}));
  EXPECT_EQ(TakeAll(queue, 0), (std::vector<uint64_t>{2, 4, 6}));
}

// Once a worker is dead, the chunks dealt to it (out with it or pending) go to the others.
TEST(WorkQueueTest, RoundRobinChunksOfADeadWorkerGoToTheOthers) {
  WorkQueue queue = MakeRoundRobinQueue(5, 2);
  EXPECT_EQ(queue.Take(1)->id(), 1u);
  EXPECT_EQ(queue.Take(0)->id(), 0u);
  ASSERT_TRUE(queue.Finish(0, 0).ok());
  EXPECT_EQ(queue.Requeue(1), 1);
  EXPECT_EQ(TakeAll(queue, 0), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(WorkQueueTest, MalformedSpecsAreRejectedNamingTheQueue) {
  proto::WorkQueueSpec no_workers = Spec("bsp", 2);
  no_workers.set_assignment(proto::WorkQueueSpec::ROUND_ROBIN);
  absl::Status dealt = WorkQueue::Create(no_workers).status();
  EXPECT_TRUE(absl::IsInvalidArgument(dealt));
  EXPECT_NE(dealt.message().find("work queue 'bsp': round-robin assignment to 0 workers"),
            std::string::npos)
      << dealt;
  proto::WorkQueueSpec unnamed = Spec("", 1);
  EXPECT_TRUE(absl::IsInvalidArgument(WorkQueue::Create(unnamed).status()));
  proto::WorkQueueSpec gap = Spec("gap", 2);
  gap.mutable_chunks(1)->set_id(5);
  absl::Status status = WorkQueue::Create(gap).status();
  EXPECT_NE(status.message().find("work queue 'gap': chunk 1 has id 5"), std::string::npos)
      << status;
  proto::WorkQueueSpec empty_range = Spec("range", 1);
  empty_range.mutable_chunks(0)->set_begin(100);
  empty_range.mutable_chunks(0)->set_end(100);
  EXPECT_TRUE(absl::IsInvalidArgument(WorkQueue::Create(empty_range).status()));
  EXPECT_TRUE(WorkQueue::Create(Spec("empty", 0))->drained());
}

}  // namespace
}  // namespace granary
