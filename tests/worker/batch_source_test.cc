#include "worker/batch_source.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/scheduler_client.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "tests/testing/fast_scheduler.h"
#include "tests/testing/reader_input.h"

namespace granary {
namespace {

constexpr char kCluster[] = "batch-source-test";

// A scheduler on a thread with fast heartbeats, and one server and two workers registered.
class QueueBatchSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SchedulerOptions options = FastSchedulerOptions(kCluster, 1, 2);
    options.config.add_tables()->set_name("t");
    scheduler_ = std::make_unique<Scheduler>(&context_, options);
    scheduler_thread_ = std::thread([this] { scheduler_->Run().IgnoreError(); });
    ASSERT_TRUE(WaitForSchedulerPort(*scheduler_));
    server_ = NewClient(proto::SERVER, 1);
    w0_ = NewClient(proto::WORKER, 0);
    w1_ = NewClient(proto::WORKER, 0);
    RegisterAll({server_.get(), w0_.get(), w1_.get()});
    ASSERT_FALSE(HasFailure()) << "the cluster did not form";
  }

  void TearDown() override {
    if (scheduler_ != nullptr) scheduler_->RequestStop();
    if (scheduler_thread_.joinable()) scheduler_thread_.join();
    std::filesystem::remove_all(TestTempDir());
  }

  std::unique_ptr<SchedulerClient> NewClient(proto::Role role, int port) {
    return std::make_unique<SchedulerClient>(&context_,
                                             FastClientOptions(*scheduler_, kCluster, role, port));
  }

  zmq::context_t context_{1};
  std::unique_ptr<Scheduler> scheduler_;
  std::thread scheduler_thread_;
  std::unique_ptr<SchedulerClient> server_, w0_, w1_;
};

// Worker 0 takes four batches of the one chunk; its compute threads acknowledge batches 1 and 3
// and then 0, out of order, and it dies before batch 2 is acknowledged. The chunk resumes on
// worker 1 right after batch 1 (its lines, the bad line among them, are not read again);
// batches 2 and 3 are trained again and counted as partially applied, and the scheduler's
// records count every good line of the input once.
TEST_F(QueueBatchSourceTest, ADeadWorkersChunkResumesAtItsFirstUnacknowledgedBatch) {
  const absl::Duration timeout = absl::Seconds(20);
  std::vector<std::string> lines = {kHeader};
  for (int i = 0; i < 12; ++i) lines.push_back(i == 2 ? "garbage line" : NumberedLine(i));
  const std::string file = WritePlainFile(TestTempDir() + "/day.tsv", Lines(lines));
  absl::StatusOr<proto::WorkQueueSpec> spec = MakeWorkQueueSpec("q", {file}, 0);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ReaderOptions options;
  options.batch_size = 3;

  absl::StatusOr<std::unique_ptr<QueueBatchSource>> dying =
      QueueBatchSource::Open(w0_.get(), *spec, Config(), options, timeout);
  ASSERT_TRUE(dying.ok()) << dying.status();
  std::vector<int64_t> tickets;
  std::vector<std::vector<float>> prices;
  Batch batch;
  int64_t ticket = 0;
  for (int b = 0; b < 4; ++b) {
    ASSERT_EQ((*dying)->Next(&batch, &ticket, /*may_wait=*/true), BatchSource::Take::kBatch);
    tickets.push_back(ticket);
    prices.push_back(batch.numerics[0].values);
  }
  ASSERT_EQ(prices[1], (std::vector<float>{4, 5, 6}));  // lines 0..6: 0, 1, bad, 3 and these
  {
    std::thread a([&] { (*dying)->Done(tickets[3]); });
    std::thread b([&] { (*dying)->Done(tickets[1]); });
    a.join();
    b.join();
  }
  std::thread([&] { (*dying)->Done(tickets[0]); }).join();
  // A request after the reports on the same connection: once answered, they arrived.
  ASSERT_TRUE(w0_->OpenQueue(*spec, timeout).ok());
  dying->reset();
  w0_.reset();  // dies with batch 2 unacknowledged

  absl::StatusOr<std::unique_ptr<QueueBatchSource>> resuming =
      QueueBatchSource::Open(w1_.get(), *spec, Config(), options, timeout);
  ASSERT_TRUE(resuming.ok()) << resuming.status();
  std::vector<std::vector<float>> retrained;
  for (int b = 0; b < 5; ++b) {  // bounded: two batches, then the end
    BatchSource::Take take = (*resuming)->Next(&batch, &ticket, /*may_wait=*/true);
    if (take != BatchSource::Take::kBatch) break;
    retrained.push_back(batch.numerics[0].values);
    (*resuming)->Done(ticket);
  }
  ASSERT_TRUE((*resuming)->status().ok()) << (*resuming)->status();
  EXPECT_EQ(retrained, (std::vector<std::vector<float>>{prices[2], prices[3]}));
  EXPECT_EQ((*resuming)->chunks_finished(), 1);
  const proto::QueueTotals totals = (*resuming)->totals();
  EXPECT_EQ(totals.samples_trained(), 11u);  // 6 by worker 0, 5 by worker 1
  EXPECT_EQ(totals.requeued_chunks(), 1u);
  EXPECT_EQ(totals.partial_batches(), 2u);
}

// With max_batches_past_resume 2, a thread asking for a third batch while the batch at the
// resume point is not Done must wait (kMustWait, or blocks with may_wait) even once the batch
// after it is Done; the Done of the batch at the resume point lets it go on.
TEST_F(QueueBatchSourceTest, BatchesPastTheResumePointAreBounded) {
  const absl::Duration timeout = absl::Seconds(20);
  const std::string file = WritePlainFile(TestTempDir() + "/day.tsv", NumberedFile(12));
  absl::StatusOr<proto::WorkQueueSpec> spec = MakeWorkQueueSpec("q", {file}, 0);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ReaderOptions options;
  options.batch_size = 3;
  absl::StatusOr<std::unique_ptr<QueueBatchSource>> source =
      QueueBatchSource::Open(w0_.get(), *spec, Config(), options, timeout,
                             /*max_batches_past_resume=*/2);
  ASSERT_TRUE(source.ok()) << source.status();
  Batch batch;
  int64_t first = 0, second = 0, third = 0;
  ASSERT_EQ((*source)->Next(&batch, &first, true), BatchSource::Take::kBatch);
  ASSERT_EQ((*source)->Next(&batch, &second, true), BatchSource::Take::kBatch);
  EXPECT_EQ((*source)->Next(&batch, &third, false), BatchSource::Take::kMustWait);
  std::atomic<bool> taken{false};
  std::vector<float> prices;
  std::thread waiting([&] {
    Batch next;
    EXPECT_EQ((*source)->Next(&next, &third, true), BatchSource::Take::kBatch);
    prices = next.numerics[0].values;
    taken = true;
  });
  (*source)->Done(second);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(taken.load()) << "a third batch past the resume point was handed out";
  (*source)->Done(first);
  waiting.join();
  EXPECT_TRUE(taken.load());
  EXPECT_EQ(prices, (std::vector<float>{6, 7, 8}));
  (*source)->Done(third);
}

}  // namespace
}  // namespace granary
