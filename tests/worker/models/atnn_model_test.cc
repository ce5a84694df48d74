#include "worker/models/atnn_model.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
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
columns { name: "item_id" role: CATEGORICAL }
columns { name: "genres" role: MULTI_CATEGORICAL }
columns { name: "item_views" role: NUMERIC }
columns { name: "item_mean" role: NUMERIC }
)";

constexpr char kAtnn[] = R"(
embedding_dim: 3
atnn {
  retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
  user_tower { fields: ["user_id"] mlp: [4, 3] }
  item_tower { fields: ["item_id", "genres"] mlp: [4, 3] }
  statistics_columns: ["item_views", "item_mean"]
  similarity_weight: 0.8
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

// Five samples; items 9 (sample 2) and 10 (sample 4) have no statistics: new arrivals.
Batch SmallBatch() {
  Batch batch;
  batch.size = 5;
  batch.labels = {{"click", {1, 0, 1, 0, 1}, {1, 1, 1, 0, 1}}};
  batch.categoricals = {{"user_id", {11, 12, 11, 13, 14}, {1, 1, 1, 1, 1}},
                        {"item_id", {7, 8, 9, 7, 10}, {1, 1, 1, 1, 1}}};
  batch.multi_categoricals = {{"genres", {0, 2, 3, 4, 5, 6}, {21, 22, 21, 23, 21, 22}}};
  batch.numerics = {{"item_views", {1.5f, 0.7f, 0, 1.5f, 0}, {1, 1, 1, 1, 0}},
                    {"item_mean", {0.2f, -0.4f, 0, 0.2f, 0}, {1, 1, 0, 1, 0}}};
  return batch;
}

class AtnnModelTest : public PreparedModelTest<AtnnModel> {
 protected:
  void SetUp() override {
    const absl::Status built = Build(kDataset, kAtnn, SmallBatch(),
                                     Draw{/*param_seed=*/7, /*row_seed=*/5, /*row_scale=*/0.5f});
    ASSERT_TRUE(built.ok()) << built;
  }

  // Runs Forward and the Backward of step `step`; returns the step's total loss.
  double StepLoss(int64_t step, Matrix* d_rows) {
    std::vector<nn::LossValue> losses;
    model_->set_step(step);
    model_->Forward(*input_, rows_);
    model_->Backward(*input_, &losses, d_rows);
    return 1.5 * losses[0].mean() + 0.8 * model_->similarity_loss().mean();
  }
};

TEST_F(AtnnModelTest, NewItemsAreScoredByTheGenerator) {
  model_->Forward(*input_, rows_);
  EXPECT_TRUE(model_->item_vectors().row(0).isApprox(model_->encoder_vectors().row(0)));
  EXPECT_TRUE(model_->item_vectors().row(2).isApprox(model_->generator_vectors().row(2)));
  EXPECT_TRUE(model_->item_vectors().row(4).isApprox(model_->generator_vectors().row(4)));
  EXPECT_NEAR(model_->output(0)(2, 0),
              model_->user_vectors().row(2).dot(model_->generator_vectors().row(2)) / 0.5f, 1e-5);
}

TEST_F(AtnnModelTest, EncoderStepGradientsMatchFiniteDifferences) {
  Matrix d_rows, scratch;
  StepLoss(0, &d_rows);
  EXPECT_EQ(model_->step(), 1);
  const Matrix analytic_rows = d_rows;
  const std::vector<Matrix> analytic = gc::CopyGrads(model_->params());
  for (size_t i = 0; i < analytic.size(); ++i) {
    if (absl::StartsWith(model_->params().blocks()[i]->name, "item_generator")) {
      EXPECT_TRUE(analytic[i].isZero()) << model_->params().blocks()[i]->name;
    }
  }
  auto loss = [&] { return StepLoss(0, &scratch); };
  gc::ExpectGradientNear("rows", &rows_, analytic_rows, loss);
  gc::ExpectParameterGradientsNear(&model_->params(), analytic, loss);
}

TEST_F(AtnnModelTest, GeneratorStepTrainsOnlyTheGenerator) {
  Matrix d_rows, scratch;
  StepLoss(1, &d_rows);
  EXPECT_GT(model_->similarity_loss().count, 0);
  const std::vector<Matrix> analytic = gc::CopyGrads(model_->params());
  auto loss = [&] { return StepLoss(1, &scratch); };
  for (size_t i = 0; i < analytic.size(); ++i) {
    nn::ParamBlock* block = model_->params().blocks()[i].get();
    if (absl::StartsWith(block->name, "item_generator")) {
      // Perturbing the generator moves neither the encoder's targets nor the user tower.
      gc::ExpectGradientNear(block->name, &block->value, analytic[i], loss);
    } else {
      EXPECT_TRUE(analytic[i].isZero()) << block->name;
    }
  }
  // The user rows are held fixed: user 13 (sample 3) is only a user, never an item.
  const auto& input = static_cast<const AtnnInput&>(*input_);
  EXPECT_TRUE(d_rows.row(input.user_slots[0].row_ids[3]).isZero());
}

TEST_F(AtnnModelTest, PopularityFromTheMeanUserVectorEqualsTheMeanScore) {
  Matrix d_rows;
  StepLoss(0, &d_rows);  // an encoder step records the labelled samples' user vectors
  const Matrix users = model_->user_vectors();
  const Matrix items = model_->generator_vectors();
  std::vector<float> scores(items.rows());
  model_->PopularityScores(items, absl::MakeSpan(scores));
  // Samples 0, 1, 2 and 4 are labelled: the mean is over their users.
  for (Eigen::Index i = 0; i < items.rows(); ++i) {
    double mean = 0;
    for (int b : {0, 1, 2, 4}) mean += users.row(b).dot(items.row(i));
    EXPECT_NEAR(scores[i], mean / 4, 1e-5) << "item row " << i;
  }
}

TEST_F(AtnnModelTest, PrepareNamesAMissingStatisticsColumn) {
  Batch batch = SmallBatch();
  batch.numerics.pop_back();  // no item_mean
  absl::Status status = model_->Prepare(batch, input_.get());
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("'item_mean'"), std::string::npos) << status;
}

TEST_F(AtnnModelTest, RejectsAStatisticsColumnThatIsNotNumeric) {
  std::string text = kAtnn;
  text.replace(text.find("\"item_mean\""), 11, "\"genres\"");
  ASSERT_TRUE(ParseTextProto(text, "model", &config_).ok());
  absl::Status status = CreateModel(config_, dataset_).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("statistics_columns[1]"), std::string::npos) << status;
}

}  // namespace
}  // namespace granary
