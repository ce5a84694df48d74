#include "worker/models/autoint_model.h"

#include <memory>
#include <string>

#include "common/config.h"
#include "common/config_location.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"
#include "worker/models/model_config.h"
#include "worker/models/model_factory.h"

namespace granary {
namespace {

using testing_batch::SmallBatch;

// Draws whose pre-activations keep clear of ReLU's kinks (see ExpectModelGradientsMatch): with
// two interacting layers and a hidden head layer most draws put one within the step of 0.
constexpr int kSeed = 10;
constexpr int kNumericSeed = 3;

constexpr char kAutoInt[] = R"(
embedding_dim: 3
autoint {
  fields: ["user_id", "item_id", "tags", "history"]
  attention_layers: 2
  attention_heads: 2
  attention_head_dim: 2
}
)";

proto::ModelConfig Config(const std::string& architecture = kAutoInt) {
  proto::ModelConfig config = testing_batch::ModelWithTasks(architecture);
  FillModelDefaults(&config);
  return config;
}

absl::Status Validate(const proto::ModelConfig& model) {
  return ValidateModelConfig(model, testing_batch::SmallDataset(),
                             ConfigLocation(model, nullptr, "job"));
}

TEST(AutoIntModelTest, LayersChainFromTheEmbeddingsToTheHeads) {
  absl::StatusOr<std::unique_ptr<AutoIntModel>> model =
      AutoIntModel::Create(Config(), testing_batch::SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  const auto& layers = (*model)->layers();
  ASSERT_EQ(layers.size(), 2u);
  // Four fields: user_id, item_id, tags, and the history's one categorical step field.
  EXPECT_EQ(layers[0]->num_fields(), 4);
  EXPECT_EQ(layers[0]->input_dim(), 3);
  EXPECT_EQ(layers[1]->input_dim(), 4);
  // Per layer 4 weights of [input, 2 * 2]; the click head reads 4 fields * 4 into 4 hidden
  // units and 1 output, the grade head 16 into 3 classes.
  const int64_t layers_size = 4 * 3 * 4 + 4 * 4 * 4;
  const int64_t heads_size = (16 * 4 + 4) + (4 * 1 + 1) + (16 * 3 + 3);
  EXPECT_EQ((*model)->params().num_values(), layers_size + heads_size);
}

TEST(AutoIntModelTest, GradientsMatchFiniteDifferences) {
  absl::StatusOr<std::unique_ptr<AutoIntModel>> model =
      AutoIntModel::Create(Config(), testing_batch::SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, kSeed);
}

TEST(AutoIntModelTest, NumericFieldsGradientsMatchFiniteDifferences) {
  proto::ModelConfig config = Config();
  config.mutable_autoint()->add_numeric_fields("views");
  config.mutable_autoint()->add_numeric_fields("score");
  absl::StatusOr<std::unique_ptr<AutoIntModel>> model =
      AutoIntModel::Create(config, testing_batch::SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<std::unique_ptr<AutoIntModel>> without =
      AutoIntModel::Create(Config(), testing_batch::SmallDataset());
  ASSERT_TRUE(without.ok()) << without.status();
  // Two more inputs of the click head's hidden layer (4 wide) and of the grade head (3).
  EXPECT_EQ((*model)->params().num_values(), (*without)->params().num_values() + 2 * (4 + 3));
  testing_batch::ExpectModelGradientsMatch(model->get(), SmallBatch(), {3, 2}, kNumericSeed);
}

TEST(AutoIntModelTest, TheFactoryBuildsIt) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      CreateModel(Config(), testing_batch::SmallDataset());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_NE(dynamic_cast<AutoIntModel*>(model->get()), nullptr);
  EXPECT_EQ(ArchitectureName(Config()), "autoint");
}

TEST(AutoIntModelTest, BadConfigsAreNamed) {
  EXPECT_TRUE(Validate(Config()).ok()) << Validate(Config());
  struct Case {
    const char* architecture;
    const char* message;
  };
  for (const Case& c : {
           Case{R"(embedding_dim: 3 autoint { attention_layers: 1 attention_heads: 1
                   attention_head_dim: 1 })",
                "fields is empty"},
           Case{R"(embedding_dim: 3 autoint { fields: "views" attention_layers: 1
                   attention_heads: 1 attention_head_dim: 1 })",
                "column 'views' is not CATEGORICAL"},
           Case{R"(embedding_dim: 3 autoint { fields: "user_id" numeric_fields: "tags"
                   attention_layers: 1 attention_heads: 1 attention_head_dim: 1 })",
                "numeric_fields: column 'tags' is not NUMERIC"},
           Case{R"(embedding_dim: 3 autoint { fields: "user_id" attention_heads: 1
                   attention_head_dim: 1 })",
                "attention_layers must be >= 1"},
           Case{R"(embedding_dim: 3 autoint { fields: "user_id" attention_layers: 1
                   attention_head_dim: 1 })",
                "attention_heads must be >= 1"},
           Case{R"(embedding_dim: 3 autoint { fields: "user_id" attention_layers: 1
                   attention_heads: 1 })",
                "attention_head_dim must be >= 1"},
       }) {
    const absl::Status status = Validate(Config(c.architecture));
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << c.message;
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status;
  }
}

}  // namespace
}  // namespace granary
