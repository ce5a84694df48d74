#include "ps/spiller.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ps/push_merge_operator.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

constexpr int kDim = 2;
constexpr int kShards = 2;

proto::TableConfig SgdTable() {
  proto::TableConfig config;
  config.set_name("spilled");
  config.set_dim(kDim);
  config.mutable_optimizer()->mutable_sgd()->set_learning_rate(1.0f);
  return config;
}

// Two shards of push logs over a store holding the table's merge operator. With SGD at
// learning rate 1 and zero initial values, a row's values are minus the sum of its gradients.
class SpillerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("spiller");
    ASSERT_FALSE(dir_.empty());
    RowStoreOptions options;
    options.path = dir_;
    absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> op = NewPushMergeOperator(config_);
    ASSERT_TRUE(op.ok()) << op.status();
    options.merge_operators[config_.name()] = *op;
    absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(options, {config_.name()});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    for (int s = 0; s < kShards; ++s) {
      shards_.push_back(std::make_unique<ShardPushLogs>(PushOperandBytes(layout_), 8));
    }
  }

  void TearDown() override {
    spiller_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartSpiller(bool run_thread) {
    std::vector<ShardPushLogs*> logs;
    for (auto& shard : shards_) logs.push_back(shard.get());
    spiller_ = std::make_unique<Spiller>(store_.get(), 0, logs, &stored_rows_, run_thread);
  }

  // Logs a push of {grad, grad} to `key` in its shard's active log.
  void Log(uint64_t key, float grad) {
    ShardPushLogs& shard = *shards_[key & (kShards - 1)];
    std::lock_guard<std::mutex> lock(shard.mutex);
    const float grads[kDim] = {grad, grad};
    std::string operand(PushOperandBytes(layout_), '\0');
    EncodePushOperand(1, 1, grads, kDim, operand.data());
    shard.active_log.Append(key, operand.data());
    spiller_->RequestSpillIfDue(shard);
  }

  size_t LoggedPushes() {
    size_t pushes = 0;
    for (auto& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard->mutex);
      pushes += shard->active_log.size() + shard->sealed_log.size();
    }
    return pushes;
  }

  // The stored values of `keys` (dim 0), as RocksDB folds them; NaN where not stored.
  std::vector<float> StoredValues(const std::vector<uint64_t>& keys) {
    std::vector<rocksdb::PinnableSlice> records;
    std::vector<bool> found;
    EXPECT_TRUE(store_->MultiGet(0, keys, &records, &found, nullptr).ok());
    std::vector<float> values;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!found[i]) {
        values.push_back(std::nanf(""));
        continue;
      }
      std::vector<uint64_t> record((records[i].size() + 7) / 8);
      std::memcpy(record.data(), records[i].data(), records[i].size());
      values.push_back(layout_.values(reinterpret_cast<const char*>(record.data()))[0]);
    }
    return values;
  }

  const proto::TableConfig config_ = SgdTable();
  const RowLayout layout_{kDim, 0};
  std::string dir_;
  std::unique_ptr<RowStore> store_;
  std::vector<std::unique_ptr<ShardPushLogs>> shards_;
  std::atomic<bool> stored_rows_{false};
  std::unique_ptr<Spiller> spiller_;
};

// Spill writes every active log's pushes to RocksDB, in order, and empties the logs; pushes
// logged afterwards stay until FlushLocked writes them.
TEST_F(SpillerTest, SpillAndFlushWriteEveryLoggedPushOnceAndEmptyTheLogs) {
  StartSpiller(/*run_thread=*/false);
  Log(1, 1.0f);
  Log(2, 2.0f);
  Log(1, 3.0f);
  ASSERT_TRUE(spiller_->Spill().ok());
  EXPECT_TRUE(stored_rows_.load());
  EXPECT_EQ(spiller_->spills(), 1u);
  EXPECT_EQ(LoggedPushes(), 0u);
  EXPECT_EQ(StoredValues({1, 2}), (std::vector<float>{-4.0f, -2.0f}));

  Log(2, 5.0f);
  Log(3, 1.0f);
  {
    auto locks = spiller_->LockAll();
    ASSERT_TRUE(spiller_->FlushLocked().ok());
  }
  EXPECT_EQ(spiller_->spills(), 2u);
  EXPECT_EQ(LoggedPushes(), 0u);
  EXPECT_EQ(StoredValues({1, 2, 3}), (std::vector<float>{-4.0f, -7.0f, -1.0f}));
  {
    auto locks = spiller_->LockAll();
    ASSERT_TRUE(spiller_->FlushLocked().ok());  // nothing logged: no spill
  }
  EXPECT_EQ(spiller_->spills(), 2u);
}

// A log three quarters full requests a spill, which the thread carries out once woken.
TEST_F(SpillerTest, ThreadSpillsWhenALogIsThreeQuartersFull) {
  StartSpiller(/*run_thread=*/true);
  for (int i = 0; i < 5; ++i) Log(2 * i, 1.0f);  // all in shard 0: 5 of 8, below 6
  spiller_->WakeIfRequested();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(spiller_->spills(), 0u);
  Log(10, 1.0f);
  spiller_->WakeIfRequested();
  for (int wait = 0; wait < 500 && spiller_->spills() == 0; ++wait) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(spiller_->spills(), 1u);
  EXPECT_EQ(LoggedPushes(), 0u);
  EXPECT_EQ(StoredValues({0, 10}), (std::vector<float>{-1.0f, -1.0f}));
}

}  // namespace
}  // namespace granary
