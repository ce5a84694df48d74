#include "worker/models/two_tower_model.h"

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

using testing_batch::kRetrievalDataset;

constexpr char kTwoTower[] = R"(
embedding_dim: 3
two_tower {
  retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
  user_tower { fields: ["user_id", "age"] mlp: [3] }
  item_tower { fields: ["item_id", "genres"] mlp: [3] }
  loss: IN_BATCH_SOFTMAX
  sampling_bias_correction: true
  frequency_buckets: 64
  frequency_learning_rate: 1
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

// The shared six-sample batch (tests/testing/retrieval_testing.h).
Batch SmallBatch() { return testing_batch::RetrievalSmallBatch(); }

class TwoTowerModelTest : public PreparedModelTest<TwoTowerModel> {
 protected:
  void Build(const std::string& model_text) {
    ASSERT_TRUE(PreparedModelTest::Build(kRetrievalDataset, model_text, SmallBatch(), {}).ok());
  }

  // Checks d_rows and every parameter gradient of one Backward against central differences of
  // loss(), which runs Forward and returns the total loss.
  void ExpectGradientsMatch(const std::function<void()>& before_backward,
                            const std::function<double()>& loss) {
    std::vector<nn::LossValue> losses;
    Matrix d_rows;
    before_backward();
    model_->Forward(*input_, rows_);
    model_->Backward(*input_, &losses, &d_rows);
    const Matrix analytic_rows = d_rows;
    const std::vector<Matrix> analytic_params = gc::CopyGrads(model_->params());
    // Normalized vectors under a softmax are curved enough to need the extrapolated check.
    gc::ExpectGradientNearExtrapolated("rows", &rows_, analytic_rows, loss);
    gc::ExpectParameterGradientsNear(&model_->params(), analytic_params, loss,
                                     /*extrapolated=*/true);
  }

  double MainLoss(const std::function<void()>& before_backward) {
    before_backward();
    return FirstTaskLoss(1.5);
  }
};

TEST_F(TwoTowerModelTest, OutputIsTheScaledCosine) {
  Build(kTwoTower);
  model_->Forward(*input_, rows_);
  const Matrix& users = model_->user_vectors();
  const Matrix& items = model_->item_vectors();
  EXPECT_NEAR(users.row(1).norm(), 1.0f, 1e-5);
  EXPECT_NEAR(model_->output(0)(4, 0), users.row(4).dot(items.row(4)) / 0.5f, 1e-5);
}

TEST_F(TwoTowerModelTest, InBatchSoftmaxGradientsMatchFiniteDifferences) {
  Build(kTwoTower);
  // With learning rate 1 the frequency estimate of a repeated batch is the same from the
  // second step on, so warm it up and the loss is a fixed function of the rows.
  auto nothing = [] {};
  MainLoss(nothing);
  MainLoss(nothing);
  std::vector<nn::LossValue> losses;
  Matrix d_rows;
  model_->Forward(*input_, rows_);
  model_->Backward(*input_, &losses, &d_rows);
  EXPECT_EQ(losses[0].count, 5);  // the positives
  ExpectGradientsMatch(nothing, [&] { return MainLoss(nothing); });
}

TEST_F(TwoTowerModelTest, RandomNegativeGradientsMatchFiniteDifferences) {
  std::string text = kTwoTower;
  text.replace(text.find("IN_BATCH_SOFTMAX"), 16, "RANDOM_NEGATIVE_BCE num_negatives: 2");
  Build(text);
  auto reseed = [&] { model_->set_negative_seed(9); };
  std::vector<nn::LossValue> losses;
  Matrix d_rows;
  model_->Forward(*input_, rows_);
  model_->Backward(*input_, &losses, &d_rows);
  EXPECT_EQ(losses[0].count, 5 * 3);  // each positive and its two negatives
  ExpectGradientsMatch(reseed, [&] { return MainLoss(reseed); });
}

constexpr char kDat[] = R"(
embedding_dim: 3
dat {
  towers {
    retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
    user_tower { fields: ["user_id", "age"] mlp: [3] }
    item_tower { fields: ["item_id", "genres"] mlp: [3] }
    loss: IN_BATCH_SOFTMAX
  }
  amm_user_weight: 0.7
  amm_item_weight: 0.3
  category_alignment_weight: 2
  category_column: "genres"
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

TEST_F(TwoTowerModelTest, DatAddsAugmentedRowsPerId) {
  Build(kDat);
  // user ids 11..15 and item ids 7, 8, 9, 10, 12: one augmented row each, beside the features.
  const auto& input = static_cast<const TwoTowerInput&>(*input_);
  EXPECT_EQ(input.user_augment_rows[0], input.user_augment_rows[2]);
  EXPECT_EQ(input.item_augment_rows[0], input.item_augment_rows[3]);
  EXPECT_NE(input.keys[input.item_augment_rows[0]], 7u);
  EXPECT_EQ(input.categories[0], input.categories[1]);  // both start with genre 21
  EXPECT_NE(input.categories[0], input.categories[4]);
}

// The mimic losses stop the gradient at the other tower's output, so the finite-difference
// loss holds those targets at their values in the unperturbed pass.
TEST_F(TwoTowerModelTest, DatGradientsMatchFiniteDifferencesWithStopGradient) {
  Build(kDat);
  model_->Forward(*input_, rows_);
  const Matrix user_targets = model_->item_vectors();  // a_u mimics p_v
  const Matrix item_targets = model_->user_vectors();  // a_v mimics p_u
  const auto& input = static_cast<const TwoTowerInput&>(*input_);
  const nn::SampleWeighting positives{{}, input.positive};
  auto nothing = [] {};
  double alignment_seen = 0;
  ExpectGradientsMatch(nothing, [&] {
    const double main = MainLoss(nothing);
    const TwoTowerModel::AuxiliaryLosses& auxiliary = model_->auxiliary_losses();
    alignment_seen = auxiliary.category_alignment.total;
    Matrix scratch;
    const double amm_user =
        nn::SquaredDistanceToTarget(model_->user_augmented(), user_targets, positives, &scratch)
            .mean();
    const double amm_item =
        nn::SquaredDistanceToTarget(model_->item_augmented(), item_targets, positives, &scratch)
            .mean();
    return main + 0.7 * amm_user + 0.3 * amm_item + 2 * auxiliary.category_alignment.mean();
  });
  EXPECT_EQ(model_->auxiliary_losses().category_alignment.count, 1);
  EXPECT_GT(alignment_seen, 0);
}

TEST_F(TwoTowerModelTest, DatPrepareNamesAMissingColumn) {
  Build(kDat);
  Batch batch = SmallBatch();
  batch.multi_categoricals[0].name = "tags";  // the item tower's genres and the category
  absl::Status status = model_->Prepare(batch, input_.get());
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("'genres'"), std::string::npos) << status;
}

TEST_F(TwoTowerModelTest, DatRejectsTowersNarrowerThanTheEmbeddings) {
  std::string text = kDat;
  text.replace(text.find("embedding_dim: 3"), 16, "embedding_dim: 4");
  ASSERT_TRUE(ParseTextProto(kRetrievalDataset, "dataset", &dataset_).ok());
  ASSERT_TRUE(ParseTextProto(text, "model", &config_).ok());
  absl::Status status = CreateModel(config_, dataset_).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("must equal embedding_dim 4"), std::string::npos) << status;
}

TEST_F(TwoTowerModelTest, RejectsTowersOfDifferentWidths) {
  std::string text = kTwoTower;
  text.replace(text.find("mlp: [3] }"), 10, "mlp: [5] }");
  ASSERT_TRUE(ParseTextProto(kRetrievalDataset, "dataset", &dataset_).ok());
  ASSERT_TRUE(ParseTextProto(text, "model", &config_).ok());
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config_, dataset_);
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find("model.two_tower"), std::string::npos) << model.status();
}

TEST_F(TwoTowerModelTest, RejectsAnIdColumnThatIsNotCategorical) {
  std::string text = kTwoTower;
  text.replace(text.find("item_id_column: \"item_id\""), 25, "item_id_column: \"genres\"");
  ASSERT_TRUE(ParseTextProto(kRetrievalDataset, "dataset", &dataset_).ok());
  ASSERT_TRUE(ParseTextProto(text, "model", &config_).ok());
  absl::Status status = CreateModel(config_, dataset_).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("item_id_column"), std::string::npos) << status;
}

TEST_F(TwoTowerModelTest, PrepareNamesAMissingColumn) {
  Build(kTwoTower);
  Batch batch = SmallBatch();
  batch.categoricals.pop_back();  // no item_id
  absl::Status status = model_->Prepare(batch, input_.get());
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("item_id"), std::string::npos) << status;
}

}  // namespace
}  // namespace granary
