#include "worker/models/dupn_model.h"

#include <vector>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"
#include "tests/testing/model_testing.h"
#include "worker/nn/embedding_pooling.h"

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
  EXPECT_EQ(input.step_row_ids[0][1 * 3 + 0], nn::kPaddingRow);
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

// The model of kModel with numeric fields beside the user vector and the item.
absl::StatusOr<std::unique_ptr<DupnModel>> CreateWithNumericFields(
    const proto::DatasetConfig& dataset, const std::vector<std::string>& numeric_fields) {
  proto::ModelConfig config;
  EXPECT_TRUE(ParseTextProto(std::string(kModel) + testing_batch::kTasks, "model", &config).ok());
  for (const std::string& name : numeric_fields) config.mutable_dupn()->add_numeric_fields(name);
  return DupnModel::Create(config, dataset);
}

TEST_F(DupnModelTest, NumericFieldsGradientsMatchFiniteDifferences) {
  absl::StatusOr<std::unique_ptr<DupnModel>> model =
      CreateWithNumericFields(dataset_, {"views", "score"});
  ASSERT_TRUE(model.ok()) << model.status();
  // Two more inputs of the user MLP's first layer and of every head's.
  EXPECT_EQ((*model)->params().num_values(),
            model_->params().num_values() +
                2 * (5 /* user_mlp */ + 4 /* click hidden */ + 3 /* grade classes */));
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 5);
}

TEST_F(DupnModelTest, CrossLayersGradientsMatchFiniteDifferences) {
  proto::ModelConfig config = config_;
  config.mutable_dupn()->set_cross_layers(2);
  config.mutable_dupn()->add_numeric_fields("views");
  absl::StatusOr<std::unique_ptr<DupnModel>> model = DupnModel::Create(config, dataset_);
  ASSERT_TRUE(model.ok()) << model.status();
  // Each cross layer is a [w, w] weight and a [1, w] bias over the heads' input: the user
  // vector, two item fields and the numeric field.
  constexpr int kHeadWidth = 5 /* user_mlp */ + 2 * 3 /* item fields */ + 1 /* views */;
  EXPECT_NE((*model)->params().Find("head_cross.1/weight"), nullptr);
  EXPECT_EQ((*model)->params().Find("head_cross.1/weight")->value.size(), kHeadWidth * kHeadWidth);
  // Two cross layers make the heads cubic in their input, so beside ReLU's kinks a draw must
  // keep the curvature low enough for central differences at kStep (with seed 5 some rows miss
  // at kStep and match at a step of 4e-4).
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 12);
}

TEST_F(DupnModelTest, NumericFieldsChangeTheOutputAndMissingReadsAsZero) {
  absl::StatusOr<std::unique_ptr<DupnModel>> model =
      CreateWithNumericFields(dataset_, {"views", "score"});
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->params().Initialize(5);
  DupnInput input;
  ASSERT_TRUE((*model)->Prepare(SmallBatch(), &input).ok());
  ASSERT_EQ(input.numeric.rows(), 3);
  ASSERT_EQ(input.numeric.cols(), 2);
  EXPECT_EQ(input.numeric(1, 1), 0.0f);  // sample 1's score is missing
  const nn::Matrix rows = nn::Matrix::Constant(static_cast<int>(input.keys.size()), 3, 0.1f);
  (*model)->Forward(input, rows);
  const nn::Matrix before = (*model)->output(0);
  input.numeric(0, 0) += 1;
  (*model)->Forward(input, rows);
  EXPECT_NE((*model)->output(0)(0, 0), before(0, 0));
  EXPECT_EQ((*model)->output(0).bottomRows(2), before.bottomRows(2));
}

TEST_F(DupnModelTest, NumericFieldsMustBeNumericColumnsOfTheDatasetAndTheBatch) {
  absl::StatusOr<std::unique_ptr<DupnModel>> model = CreateWithNumericFields(dataset_, {"nope"});
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find("'nope'"), std::string::npos) << model.status();
  model = CreateWithNumericFields(dataset_, {"tags"});
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find("'tags' is not NUMERIC"), std::string::npos)
      << model.status();
  model = CreateWithNumericFields(dataset_, {"views"});
  ASSERT_TRUE(model.ok()) << model.status();
  Batch batch = SmallBatch();
  batch.numerics.clear();
  DupnInput input;
  absl::Status status = (*model)->Prepare(batch, &input);
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("NUMERIC column 'views'"), std::string::npos) << status;
}

}  // namespace
}  // namespace granary
