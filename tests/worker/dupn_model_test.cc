#include "worker/dupn_model.h"

#include <random>
#include <vector>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/worker/model/gradient_check.h"
#include "worker/model/embedding_pooling.h"

namespace granary {
namespace {

using model::Matrix;
namespace gc = model::gradient_check;

constexpr char kDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "grade" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL hash_space: "item" }
columns { name: "tags" role: MULTI_CATEGORICAL }
columns {
  name: "history"
  role: SEQUENCE
  step_fields { name: "item_id" kind: CATEGORICAL hash_space: "item" }
  step_fields { name: "rating" kind: NUMERIC }
}
)";

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
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 hidden_sizes: [4] }
tasks { name: "grade" head: MULTICLASS label_column: "grade" num_classes: 3 loss_weight: 0.5 }
)";

// Three samples; sample 1 has no history and no grade, sample 2 repeats item 7 in its history.
Batch SmallBatch() {
  Batch batch;
  batch.size = 3;
  batch.labels = {{"click", {1, 0, 1}, {1, 1, 1}}, {"grade", {2, 0, 1}, {1, 0, 1}}};
  batch.categoricals = {{"user_id", {11, 12, 11}, {1, 1, 1}}, {"item_id", {7, 8, 9}, {1, 1, 0}}};
  batch.multi_categoricals = {{"tags", {0, 2, 2, 3}, {21, 22, 21}}};
  SequenceColumn history;
  history.name = "history";
  history.offsets = {0, 2, 2, 5};
  history.fields = {{"item_id", proto::StepFieldConfig::CATEGORICAL, {8, 9, 7, 8, 7}, {}},
                    {"rating", proto::StepFieldConfig::NUMERIC, {}, {1, 0.5, -1, 0.25, 2}}};
  batch.sequences = {history};
  return batch;
}

class DupnModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ParseTextProto(kDataset, "dataset", &dataset_).ok());
    ASSERT_TRUE(ParseTextProto(kModel, "model", &config_).ok());
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
  DupnInput input;
  ASSERT_TRUE(model_->Prepare(SmallBatch(), &input).ok());
  std::mt19937 rng(3);
  Matrix rows = gc::RandomMatrix(&rng, static_cast<int>(input.keys.size()), 3, 0.5f);
  std::vector<model::LossValue> losses;
  Matrix d_rows;
  model_->Forward(input, rows);
  model_->Backward(input, &losses, &d_rows);
  ASSERT_EQ(losses.size(), 2u);
  EXPECT_EQ(losses[0].count, 3);
  EXPECT_EQ(losses[1].count, 2);
  const Matrix analytic_rows = d_rows;
  const std::vector<Matrix> analytic_params = gc::CopyGrads(model_->params());

  auto loss = [&]() {
    std::vector<model::LossValue> values;
    Matrix scratch;
    model_->Forward(input, rows);
    model_->Backward(input, &values, &scratch);
    return values[0].mean() * 1.0 + values[1].mean() * 0.5;
  };
  gc::ExpectGradientNear("embedding rows", &rows, analytic_rows, loss);
  gc::ExpectParameterGradientsNear(&model_->params(), analytic_params, loss);
}

}  // namespace
}  // namespace granary
