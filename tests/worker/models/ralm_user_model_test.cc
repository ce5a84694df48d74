#include "worker/models/ralm_user_model.h"

#include <random>
#include <string>
#include <vector>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"
#include "tests/testing/retrieval_testing.h"
#include "worker/models/model_factory.h"

namespace granary {
namespace {

using nn::Matrix;
namespace gc = nn::gradient_check;

constexpr char kDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "age" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL hash_space: "item" }
columns { name: "genres" role: MULTI_CATEGORICAL }
columns { name: "activity" role: NUMERIC transform { min: 0 max: 10 } }
columns { name: "raw_count" role: NUMERIC }
columns {
  name: "history"
  role: SEQUENCE
  step_fields { name: "item" kind: CATEGORICAL hash_space: "item" }
}
)";

// The user MLP and item tower have no hidden ReLU layer: near a kink the finite differences are
// meaningless at this size (nn::Mlp is checked in mlp_test).
constexpr char kRalmUser[] = R"(
embedding_dim: 3
ralm_user {
  retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
  user_fields: ["user_id", "age", "history"]
  numeric_fields: ["activity"]
  attention_hidden: 4
  user_mlp: [3]
  item_tower { fields: ["item_id", "genres"] mlp: [3] }
  sampling_bias_correction: true
  frequency_buckets: 64
  frequency_learning_rate: 1
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

// The shared six samples (tests/testing/retrieval_testing.h) with histories (sample 2 has
// none) and an activity, normalized as the reader would (sample 4's missing: 0).
Batch SmallBatch() {
  Batch batch = testing_batch::RetrievalSmallBatch();
  batch.sequences = {
      testing_batch::ItemHistory({0, 2, 3, 3, 5, 6, 8}, {8, 9, 10, 12, 13, 7, 10, 13})};
  batch.numerics = {{"activity", {0.1f, 0.9f, 0.5f, 0.3f, 0.0f, 1.0f}, {1, 1, 1, 1, 0, 1}}};
  return batch;
}

class RalmUserModelTest : public PreparedModelTest<RalmUserModel> {
 protected:
  absl::Status Build(const std::string& model_text) {
    return PreparedModelTest::Build(kDataset, model_text, SmallBatch(), {});
  }
  double MainLoss() { return FirstTaskLoss(1.5); }
};

TEST_F(RalmUserModelTest, MergesTheFieldsByPerUserWeights) {
  ASSERT_TRUE(Build(kRalmUser).ok());
  model_->Forward(*input_, rows_);
  // user_id, age, history's item, and the numeric fields' vector.
  ASSERT_EQ(model_->num_field_vectors(), 4);
  const Matrix& weights = model_->field_weights();
  ASSERT_EQ(weights.rows(), 4);
  ASSERT_EQ(weights.cols(), 6);
  for (int b = 0; b < 6; ++b) {
    EXPECT_NEAR(weights.col(b).sum(), 1.0f, 1e-5) << b;
    EXPECT_GT(weights.col(b).minCoeff(), 0.0f) << b;
  }
  // The weights depend on the user: samples 0 and 1 differ in every field.
  EXPECT_GT((weights.col(0) - weights.col(1)).norm(), 1e-4);
  for (int b = 0; b < 6; ++b) {
    EXPECT_NEAR(model_->user_vectors().row(b).norm(), 1.0f, 1e-5);
    EXPECT_NEAR(model_->output(0)(b, 0),
                model_->user_vectors().row(b).dot(model_->item_vectors().row(b)) / 0.5f, 1e-5);
  }
}

TEST_F(RalmUserModelTest, GradientsMatchFiniteDifferences) {
  ASSERT_TRUE(Build(kRalmUser).ok());
  // With learning rate 1 the frequency estimate of a repeated batch is the same from the
  // second step on, so warm it up and the loss is a fixed function of rows and parameters.
  MainLoss();
  std::vector<nn::LossValue> losses;
  Matrix d_rows;
  model_->Forward(*input_, rows_);
  model_->Backward(*input_, &losses, &d_rows);
  EXPECT_EQ(losses[0].count, 5);  // the positives
  const Matrix analytic_rows = d_rows;
  const std::vector<Matrix> analytic_params = gc::CopyGrads(model_->params());
  // The merge and the numeric projection have gradients.
  for (const char* name : {"ralm_user.merge/state_weight", "ralm_user.merge/query_weight",
                           "ralm_user.numeric/weight"}) {
    const nn::ParamBlock* block = model_->params().Find(name);
    ASSERT_NE(block, nullptr) << name;
    EXPECT_GT(block->grad.norm(), 0) << name;
  }
  auto loss = [&] { return MainLoss(); };
  gc::ExpectGradientNearExtrapolated("rows", &rows_, analytic_rows, loss);
  gc::ExpectParameterGradientsNear(&model_->params(), analytic_params, loss,
                                   /*extrapolated=*/true);
}

void ExpectConfigError(const std::string& from, const std::string& to, const std::string& where,
                       const std::string& why = "") {
  std::string text = kRalmUser;
  ASSERT_NE(text.find(from), std::string::npos) << from;
  text.replace(text.find(from), from.size(), to);
  proto::DatasetConfig dataset;
  proto::ModelConfig config;
  ASSERT_TRUE(ParseTextProto(kDataset, "dataset", &dataset).ok());
  ASSERT_TRUE(ParseTextProto(text, "model", &config).ok());
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, dataset);
  ASSERT_FALSE(model.ok()) << to;
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find(where), std::string::npos) << model.status();
  EXPECT_NE(model.status().message().find(why), std::string::npos) << model.status();
}

TEST(RalmUserModelConfigTest, BadValuesNameTheirField) {
  ExpectConfigError(
      "user_fields: [\"user_id\", \"age\", \"history\"]\n  numeric_fields: "
      "[\"activity\"]",
      "", "model.ralm_user.user_fields", "no user field");
  ExpectConfigError("numeric_fields: [\"activity\"]",
                    "numeric_fields: [\"activity\", \"raw_count\"]",
                    "model.ralm_user.numeric_fields[1]", "column 'raw_count' has no min-max range");
  ExpectConfigError("numeric_fields: [\"activity\"]", "numeric_fields: [\"age\"]",
                    "model.ralm_user.numeric_fields[0]", "column 'age' is not NUMERIC");
  ExpectConfigError("\"age\", \"history\"]", "\"activity\"]", "model.ralm_user.user_fields[1]",
                    "column 'activity' is not CATEGORICAL");
  ExpectConfigError("user_mlp: [3]", "user_mlp: [5]", "model.ralm_user",
                    "the user MLP ends at width 5, the item tower at 3");
  ExpectConfigError("user_mlp: [3]", "", "model.ralm_user.user_mlp");
  ExpectConfigError("attention_hidden: 4", "attention_hidden: 100000",
                    "model.ralm_user.attention_hidden");
  ExpectConfigError("frequency_learning_rate: 1", "frequency_learning_rate: 2",
                    "model.ralm_user.frequency_learning_rate");
  ExpectConfigError("tasks { name: \"click\" head: BINARY",
                    "tasks { name: \"click\" head: REGRESSION", "model.tasks");
}

TEST(RalmUserModelConfigTest, FillsTheMergeWidth) {
  proto::DatasetConfig dataset;
  proto::ModelConfig config;
  ASSERT_TRUE(ParseTextProto(kDataset, "dataset", &dataset).ok());
  std::string text = kRalmUser;
  text.replace(text.find("attention_hidden: 4"), 19, "");
  ASSERT_TRUE(ParseTextProto(text, "model", &config).ok());
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, dataset);
  ASSERT_TRUE(model.ok()) << model.status();
  const nn::ParamBlock* score = (*model)->params().Find("ralm_user.merge/score_vector");
  ASSERT_NE(score, nullptr);
  EXPECT_EQ(score->value.rows(), 16);  // kDefaultRalmAttentionHidden
}

}  // namespace
}  // namespace granary
