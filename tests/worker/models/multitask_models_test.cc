// The multi-task architectures besides DUPN (shared bottom, MMoE) and the factory that builds
// every architecture from a ModelConfig.
#include <memory>
#include <string>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"
#include "worker/models/mmoe_model.h"
#include "worker/models/model_factory.h"
#include "worker/models/shared_bottom_model.h"

namespace granary {
namespace {

using testing_batch::SmallBatch;

constexpr char kSharedBottom[] = R"(
embedding_dim: 3
shared_bottom { fields: ["user_id", "item_id", "tags", "history"] bottom_mlp: [6, 5] }
)";

constexpr char kMmoe[] = R"(
embedding_dim: 3
mmoe { fields: ["user_id", "item_id", "tags", "history"] num_experts: 3 expert_mlp: [5] }
)";

proto::DatasetConfig Dataset() {
  proto::DatasetConfig dataset;
  EXPECT_TRUE(ParseTextProto(testing_batch::kDataset, "dataset", &dataset).ok());
  return dataset;
}

proto::ModelConfig Config(const char* architecture) {
  proto::ModelConfig config;
  EXPECT_TRUE(
      ParseTextProto(std::string(architecture) + testing_batch::kTasks, "model", &config).ok());
  return config;
}

TEST(SharedBottomModelTest, GradientsMatchFiniteDifferences) {
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> model =
      SharedBottomModel::Create(Config(kSharedBottom), Dataset());
  ASSERT_TRUE(model.ok()) << model.status();
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(MmoeModelTest, GradientsMatchFiniteDifferences) {
  absl::StatusOr<std::unique_ptr<MmoeModel>> model = MmoeModel::Create(Config(kMmoe), Dataset());
  ASSERT_TRUE(model.ok()) << model.status();
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(SharedBottomModelTest, NumericFieldsGradientsMatchFiniteDifferences) {
  proto::ModelConfig config = Config(kSharedBottom);
  config.mutable_shared_bottom()->add_numeric_fields("views");
  config.mutable_shared_bottom()->add_numeric_fields("score");
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> model =
      SharedBottomModel::Create(config, Dataset());
  ASSERT_TRUE(model.ok()) << model.status();
  // Two more inputs of the first bottom layer (6 wide).
  absl::StatusOr<std::unique_ptr<SharedBottomModel>> without =
      SharedBottomModel::Create(Config(kSharedBottom), Dataset());
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ((*model)->params().num_values(), (*without)->params().num_values() + 2 * 6);
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(MmoeModelTest, NumericFieldsGradientsMatchFiniteDifferences) {
  proto::ModelConfig config = Config(kMmoe);
  config.mutable_mmoe()->add_numeric_fields("score");
  absl::StatusOr<std::unique_ptr<MmoeModel>> model = MmoeModel::Create(config, Dataset());
  ASSERT_TRUE(model.ok()) << model.status();
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, 6);
}

TEST(MmoeModelTest, EachTaskHasItsOwnGate) {
  absl::StatusOr<std::unique_ptr<MmoeModel>> model = MmoeModel::Create(Config(kMmoe), Dataset());
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

TEST(ModelFactoryTest, BuildsEveryArchitecture) {
  const proto::DatasetConfig dataset = Dataset();
  for (const char* architecture : {kSharedBottom, kMmoe}) {
    const proto::ModelConfig config = Config(architecture);
    absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, dataset);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->tasks().size(), 2u);
    EXPECT_GT((*model)->params().num_values(), 0);
  }
  EXPECT_EQ(ArchitectureName(Config(kMmoe)), "mmoe");
  EXPECT_EQ(ArchitectureName(Config(kSharedBottom)), "shared_bottom");
  proto::ModelConfig none = Config(kMmoe);
  none.clear_mmoe();
  EXPECT_EQ(ArchitectureName(none), "none");
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(none, dataset);
  EXPECT_TRUE(absl::IsInvalidArgument(model.status())) << model.status();
}

TEST(ModelFactoryTest, AnUnknownFieldIsNamed) {
  proto::ModelConfig config = Config(kSharedBottom);
  config.mutable_shared_bottom()->add_fields("nope");
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, Dataset());
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find("'nope'"), std::string::npos) << model.status();
  config = Config(kMmoe);
  config.mutable_mmoe()->add_numeric_fields("tags");
  model = CreateModel(config, Dataset());
  EXPECT_TRUE(absl::IsInvalidArgument(model.status()));
  EXPECT_NE(model.status().message().find("'tags' is not NUMERIC"), std::string::npos)
      << model.status();
}

}  // namespace
}  // namespace granary
