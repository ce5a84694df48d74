#include "worker/dupn_model.h"

#include <vector>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/worker/model/gradient_check.h"
#include "tests/worker/model_testing.h"
#include "worker/model/embedding_pooling.h"

namespace granary {
namespace {

using testing_batch::SmallBatch;

constexpr char kModel[] = R"(
embedding_dim: 3
dupn {
  user_fields: "user_id"
  item_fields: ["item_id", "tags"]
  behavior_column: "history"
  lstm_hidden: 4
  attention_hidden: 3
  user_mlp: [5]
}
)";

class DupnModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ParseTextProto(testing_batch::kDataset, "dataset", &dataset_).ok());
    ASSERT_TRUE(
        ParseTextProto(std::string(kModel) + testing_batch::kTasks, "model", &config_).ok());
    absl::StatusOr<std::unique_ptr<DupnModel>> model = DupnModel::Create(config_, dataset_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    model_->params().Initialize(5);
  }

  proto::DatasetConfig dataset_;
  proto::ModelConfig config_;
  std::unique_ptr<DupnModel> model_;
};

TEST_F(DupnModelTest, PrepareDeduplicatesKeysAcrossFields) {
  DupnInput input;
  ASSERT_TRUE(model_->Prepare(SmallBatch(), &input).ok());
  // Keys 11, 12 (users), 7, 8 (items; sample 2's item is missing), 21, 22 (tags); history adds
  // 9 only. Item 7 of the target and of the history share one row.
  EXPECT_EQ(input.keys.size(), 7u);
  EXPECT_EQ(input.num_steps, 3);
  EXPECT_EQ(input.lengths, (std::vector<int32_t>{2, 0, 3}));
  EXPECT_EQ(input.step_row_ids[0][2 * 3 + 0], input.item_fields[0].row_ids[0]);
  EXPECT_EQ(input.step_row_ids[0][1 * 3 + 0], model::kPaddingRow);
  EXPECT_EQ(input.classes[1], (std::vector<int32_t>{2, 0, 1}));
}

TEST_F(DupnModelTest, RejectsAClassOutOfRange) {
  Batch batch = SmallBatch();
  batch.labels[1].values[0] = 3;
  DupnInput input;
  absl::Status status = model_->Prepare(batch, &input);
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("task 'grade'"), std::string::npos);
}

TEST_F(DupnModelTest, GradientsMatchFiniteDifferences) {
  testing_batch::ExpectModelGradientsMatch(model_.get(), SmallBatch(), {3, 2}, 12);
}

}  // namespace
}  // namespace granary
