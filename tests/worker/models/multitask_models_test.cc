// The multi-task architectures besides DUPN (shared bottom, MMoE) and the factory that builds
// every architecture from a ModelConfig.
#include <memory>
#include <random>
#include <string>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"
#include "worker/models/mmoe_model.h"
#include "worker/models/model_factory.h"
#include "worker/models/shared_bottom_model.h"

namespace granary {
namespace {

using testing_batch::ModelWithTasks;
using testing_batch::SmallBatch;
using testing_batch::SmallDataset;

constexpr char kSharedBottom[] = R"(
embedding_dim: 3
shared_bottom { fields: ["user_id", "item_id", "tags", "history"] bottom_mlp: [6, 5] }
)";

constexpr char kMmoe[] = R"(
embedding_dim: 3
mmoe { fields: ["user_id", "item_id", "tags", "history"] num_experts: 3 expert_mlp: [5] }
)";

TEST(SharedBottomModelTest, GradientsMatchFiniteDifferences) {
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> model =
      SharedBottomModel::Create(ModelWithTasks(kSharedBottom), SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(MmoeModelTest, GradientsMatchFiniteDifferences) {
  absl::StatusOr<std::unique_ptr<MmoeModel>> model =
      MmoeModel::Create(ModelWithTasks(kMmoe), SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(SharedBottomModelTest, NumericFieldsGradientsMatchFiniteDifferences) {
  proto::ModelConfig config = ModelWithTasks(kSharedBottom);
  config.mutable_shared_bottom()->add_numeric_fields("views");
  config.mutable_shared_bottom()->add_numeric_fields("score");
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> model =
      SharedBottomModel::Create(config, SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  // Two more inputs of the first bottom layer (6 wide).
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> without =
      SharedBottomModel::Create(ModelWithTasks(kSharedBottom), SmallDataset());
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ((*model)->params().num_values(), (*without)->params().num_values() + 2 * 6);
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(MmoeModelTest, NumericFieldsGradientsMatchFiniteDifferences) {
  proto::ModelConfig config = ModelWithTasks(kMmoe);
  config.mutable_mmoe()->add_numeric_fields("score");
  absl::StatusOr<std::unique_ptr<MmoeModel>> model = MmoeModel::Create(config, SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(MmoeModelTest, EachTaskHasItsOwnGate) {
  absl::StatusOr<std::unique_ptr<MmoeModel>> model =
      MmoeModel::Create(ModelWithTasks(kMmoe), SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->params().Initialize(6);
  std::unique_ptr<ModelInput> input = (*model)->NewInput();
  ASSERT_TRUE((*model)->Prepare(SmallBatch(), input.get()).ok());
  const nn::Matrix rows = nn::Matrix::Ones(static_cast<int>(input->keys.size()), 3);
  (*model)->Forward(*input, rows);
  const nn::MixtureOfExperts& mixture = (*model)->mixture();
  ASSERT_EQ(mixture.num_gates(), 2);
  EXPECT_FALSE(mixture.gate_weights(0).isApprox(mixture.gate_weights(1)));
  EXPECT_EQ((*model)->output(0).cols(), 1);
  EXPECT_EQ((*model)->output(1).cols(), 3);
}

// TaskConfig.dropout: the head's hidden layers drop units in training passes only, so the
// model evaluates as the same model without dropout, and its training gradients (one fixed
// mask) are exact.
TEST(SharedBottomModelTest, HeadDropoutActsInTrainingOnly) {
  proto::ModelConfig with_dropout = ModelWithTasks(kSharedBottom);
  with_dropout.mutable_tasks(0)->set_dropout(0.5f);  // on its hidden layer of 4
  proto::ModelConfig plain = with_dropout;
  plain.mutable_tasks(0)->clear_dropout();
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> dropping =
      SharedBottomModel::Create(with_dropout, SmallDataset());
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> reference =
      SharedBottomModel::Create(plain, SmallDataset());
  ASSERT_TRUE(dropping.ok()) << dropping.status();
  ASSERT_TRUE(reference.ok()) << reference.status();
  (*dropping)->params().Initialize(7);
  (*reference)->params().Initialize(7);
  std::unique_ptr<ModelInput> input = (*dropping)->NewInput();
  ASSERT_TRUE((*dropping)->Prepare(SmallBatch(), input.get()).ok());
  std::mt19937 rng(3);
  const nn::Matrix rows = nn::gradient_check::RandomMatrix(
      &rng, static_cast<int>(input->keys.size()), (*dropping)->embedding_dim(), 0.5f);
  (*dropping)->Forward(*input, rows);
  const nn::Matrix evaluated = (*dropping)->output(0);
  (*reference)->Forward(*input, rows);
  EXPECT_EQ(evaluated, (*reference)->output(0));

  (*dropping)->params().forward_mode() = nn::ForwardMode{true, 11, 1};
  (*dropping)->Forward(*input, rows);
  EXPECT_NE((*dropping)->output(0), evaluated);
  testing_batch::ExpectModelGradientsMatch(dropping->get(), SmallBatch(), {3, 2}, 6);
}

TEST(ModelFactoryTest, BuildsEveryArchitecture) {
  const proto::DatasetConfig dataset = SmallDataset();
  for (const char* architecture : {kSharedBottom, kMmoe}) {
    const proto::ModelConfig config = ModelWithTasks(architecture);
    absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, dataset);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->tasks().size(), 2u);
    EXPECT_GT((*model)->params().num_values(), 0);
  }
  EXPECT_EQ(ArchitectureName(ModelWithTasks(kMmoe)), "mmoe");
  EXPECT_EQ(ArchitectureName(ModelWithTasks(kSharedBottom)), "shared_bottom");
  proto::ModelConfig none = ModelWithTasks(kMmoe);
  none.clear_mmoe();
  EXPECT_EQ(ArchitectureName(none), "none");
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(none, dataset);
  EXPECT_TRUE(absl::IsInvalidArgument(model.status())) << model.status();
}

TEST(ModelFactoryTest, AnUnknownFieldIsNamed) {
  proto::ModelConfig config = ModelWithTasks(kSharedBottom);
  config.mutable_shared_bottom()->add_fields("nope");
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, SmallDataset());
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find("'nope'"), std::string::npos) << model.status();
  config = ModelWithTasks(kMmoe);
  config.mutable_mmoe()->add_numeric_fields("tags");
  model = CreateModel(config, SmallDataset());
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find("'tags' is not NUMERIC"), std::string::npos)
      << model.status();
}

}  // namespace
}  // namespace granary
