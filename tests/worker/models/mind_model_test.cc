#include "worker/models/mind_model.h"

#include <algorithm>
#include <functional>
#include <limits>
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
columns {
  name: "history"
  role: SEQUENCE
  step_fields { name: "item" kind: CATEGORICAL hash_space: "item" }
  step_fields { name: "rating" kind: NUMERIC }
}
)";

// One routing iteration: the routing weights are then the softmax of the fixed initial logits,
// constants, so the loss is a smooth function of rows and parameters and the finite
// differences see exactly what Backward computes (with more iterations the weights move with
// the inputs while Backward holds them constant, as the paper's routing does). The per-interest
// MLP has no hidden ReLU layer here: at this size, pre-activations within the finite-difference
// step of a kink, and rows whose hidden units all die (normalized from a zero vector), make the
// finite differences meaningless; nn::Mlp itself is checked in mlp_test.
constexpr char kMind[] = R"(
embedding_dim: 3
mind {
  retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
  user_tower { fields: ["user_id", "age"] mlp: [3] }
  item_tower { fields: ["item_id", "genres"] mlp: [3] }
  behavior_column: "history"
  num_interests: 2
  routing_iterations: 1
  attention_power: 2
  sampling_bias_correction: true
  frequency_buckets: 64
  frequency_learning_rate: 1
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

// The shared six samples (tests/testing/retrieval_testing.h) with histories; sample 2 is a
// negative with no history (one interest, the profile's alone);
// histories of 4, 2, 0, 5, 1 and 3 steps give K_b = 2, 1, 1, 2, 1, 1 (floor(log2 length), at
// least 1, at most K = 2).
Batch SmallBatch() {
  Batch batch = testing_batch::RetrievalSmallBatch();
  SequenceColumn history = testing_batch::ItemHistory(
      {0, 4, 6, 6, 11, 12, 15}, {8, 9, 10, 12, 7, 9, 8, 10, 12, 9, 13, 7, 10, 13, 8});
  SequenceField rating;
  rating.name = "rating";
  rating.kind = proto::StepFieldConfig::NUMERIC;
  rating.values.assign(15, 4.0f);
  history.fields.push_back(rating);
  batch.sequences = {history};
  return batch;
}

class MindModelTest : public PreparedModelTest<MindModel> {
 protected:
  absl::Status Build(const std::string& model_text) {
    return PreparedModelTest::Build(kDataset, model_text, SmallBatch(), {});
  }
  double MainLoss() { return FirstTaskLoss(1.5); }
};

TEST_F(MindModelTest, UsersHaveInterestsByHistoryLength) {
  ASSERT_TRUE(Build(kMind).ok());
  model_->Forward(*input_, rows_);
  const std::vector<int32_t> counts(model_->interest_counts().begin(),
                                    model_->interest_counts().end());
  EXPECT_EQ(counts, (std::vector<int32_t>{2, 1, 1, 2, 1, 1}));
  const Matrix& interests = *model_->interest_vectors();
  ASSERT_EQ(interests.cols(), 2 * 3);
  // Every interest in use is normalized, the profile-only one of sample 2 too.
  EXPECT_NEAR(interests.row(2).head(3).norm(), 1.0f, 1e-5);
  EXPECT_NEAR(interests.row(0).tail(3).norm(), 1.0f, 1e-5);
  // The two interests of sample 0 differ: its history was routed apart.
  EXPECT_GT((interests.row(0).head(3) - interests.row(0).tail(3)).norm(), 1e-3);
}

TEST_F(MindModelTest, OutputScoresTheBestInterest) {
  ASSERT_TRUE(Build(kMind).ok());
  model_->Forward(*input_, rows_);
  const Matrix& interests = *model_->interest_vectors();
  const Matrix& items = model_->item_vectors();
  for (int b = 0; b < 6; ++b) {
    float best = -std::numeric_limits<float>::infinity();
    for (int k = 0; k < model_->interest_counts()[b]; ++k) {
      best = std::max(best, interests.row(b).segment(k * 3, 3).dot(items.row(b)));
    }
    EXPECT_NEAR(model_->output(0)(b, 0), best / 0.5f, 1e-5) << b;
    EXPECT_NEAR(model_->user_vectors().row(b).dot(items.row(b)), best, 1e-5) << b;
  }
}

TEST_F(MindModelTest, GradientsMatchFiniteDifferences) {
  ASSERT_TRUE(Build(kMind).ok());
  // With learning rate 1 the frequency estimate of a repeated batch is the same from the
  // second step on, so warm it up and the loss is a fixed function of the rows.
  MainLoss();
  std::vector<nn::LossValue> losses;
  Matrix d_rows;
  model_->Forward(*input_, rows_);
  model_->Backward(*input_, &losses, &d_rows);
  EXPECT_EQ(losses[0].count, 5);  // the positives
  const Matrix analytic_rows = d_rows;
  const std::vector<Matrix> analytic_params = gc::CopyGrads(model_->params());
  // The behaviours reach the loss: a history item's row has a gradient (item 13 appears only
  // in histories).
  EXPECT_GT(d_rows.norm(), 0);
  auto loss = [&] { return MainLoss(); };
  gc::ExpectGradientNearExtrapolated("rows", &rows_, analytic_rows, loss);
  gc::ExpectParameterGradientsNear(&model_->params(), analytic_params, loss,
                                   /*extrapolated=*/true);
}

TEST_F(MindModelTest, TheBehavioursReachTheLoss) {
  ASSERT_TRUE(Build(kMind).ok());
  std::vector<nn::LossValue> losses;
  Matrix d_rows;
  model_->Forward(*input_, rows_);
  model_->Backward(*input_, &losses, &d_rows);
  // Item 13 is only ever a behaviour, never a target: its gradient comes through the routing.
  const auto& input = static_cast<const MindInput&>(*input_);
  const int32_t row = input.step_row_ids[0][3 * input.num_steps + 3];  // sample 3's 4th step
  EXPECT_GT(d_rows.row(row).norm(), 0);
}

void ExpectConfigError(const std::string& from, const std::string& to, const std::string& where) {
  std::string text = kMind;
  text.replace(text.find(from), from.size(), to);
  proto::DatasetConfig dataset;
  proto::ModelConfig config;
  ASSERT_TRUE(ParseTextProto(kDataset, "dataset", &dataset).ok());
  ASSERT_TRUE(ParseTextProto(text, "model", &config).ok());
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, dataset);
  ASSERT_FALSE(model.ok()) << to;
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find(where), std::string::npos) << model.status();
}

TEST(MindModelConfigTest, BadValuesNameTheirField) {
  ExpectConfigError("attention_power: 2", "attention_power: 0.5", "model.mind.attention_power");
  ExpectConfigError("num_interests: 2", "num_interests: 1000", "model.mind.num_interests");
  ExpectConfigError("routing_iterations: 1", "routing_iterations: 500",
                    "model.mind.routing_iterations");
  ExpectConfigError("behavior_column: \"history\"", "behavior_column: \"genres\"",
                    "model.mind.behavior_column");
  ExpectConfigError("mlp: [3] }\n  item", "mlp: [5] }\n  item", "model.mind");
  ExpectConfigError("frequency_learning_rate: 1", "frequency_learning_rate: 2",
                    "model.mind.frequency_learning_rate");
}

}  // namespace
}  // namespace granary
