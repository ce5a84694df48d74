// TowerConfig.dropout: the retrieval towers (two-tower and DAT, ATNN's three, MIND's item tower
// and interest MLP) drop hidden units in training passes only, so a model evaluates as the same
// model without dropout, a training pass differs (and repeats with the same seed and step), and
// its gradients under one fixed mask are exact.
#include <functional>
#include <memory>
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

// The columns of tests/testing/retrieval_testing.h's batch, plus a history (MIND) and an item
// statistic (ATNN).
constexpr char kDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "age" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL hash_space: "item" }
columns { name: "genres" role: MULTI_CATEGORICAL }
columns { name: "item_views" role: NUMERIC }
columns {
  name: "history"
  role: SEQUENCE
  step_fields { name: "item" kind: CATEGORICAL hash_space: "item" }
}
)";

// No sampling-bias correction: the loss is then a fixed function of rows and parameters, as the
// gradient check needs.
constexpr char kTwoTower[] = R"(
embedding_dim: 3
two_tower {
  retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
  user_tower { fields: ["user_id", "age"] mlp: [6, 3] dropout: 0.5 }
  item_tower { fields: ["item_id", "genres"] mlp: [6, 3] dropout: 0.5 }
  loss: IN_BATCH_SOFTMAX
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

constexpr char kAtnn[] = R"(
embedding_dim: 3
atnn {
  retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
  user_tower { fields: ["user_id", "age"] mlp: [6, 3] dropout: 0.5 }
  item_tower { fields: ["item_id", "genres"] mlp: [6, 3] dropout: 0.5 }
  statistics_columns: "item_views"
  similarity_weight: 0.8
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

// Only the user tower drops units: the interest MLP is MIND's own code, not a Tower.
constexpr char kMind[] = R"(
embedding_dim: 3
mind {
  retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
  user_tower { fields: ["user_id", "age"] mlp: [6, 3] dropout: 0.5 }
  item_tower { fields: ["item_id", "genres"] mlp: [3] }
  behavior_column: "history"
  num_interests: 2
  routing_iterations: 1
  attention_power: 1
}
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1.5 }
)";

// The draws of the parameters and of the embedding rows. ReLU's kink makes a central difference
// wrong wherever a hidden pre-activation lies within the step of 0; these draws keep clear of
// the kinks (as testing_batch::ExpectModelGradientsMatch's seeds do).
constexpr int kParameterSeed = 2;
constexpr int kRowSeed = 2;

// A training pass's seed and step: any fixed pair gives one mask.
constexpr uint64_t kTrainingSeed = 11;
constexpr int64_t kTrainingStep = 1;

// The shared six samples with a history of 2 to 3 items and an item statistic each.
Batch SmallBatch() {
  Batch batch = testing_batch::RetrievalSmallBatch();
  SequenceColumn history;
  history.name = "history";
  history.offsets = {0, 2, 4, 6, 9, 11, 13};
  history.fields = {{"item",
                     proto::StepFieldConfig::CATEGORICAL,
                     {8, 9, 10, 12, 7, 9, 8, 10, 12, 9, 13, 7, 10},
                     {}}};
  batch.sequences = {history};
  batch.numerics = {{"item_views", {1.5f, 0.7f, 0.2f, 1.5f, 0.4f, 0.9f}, {1, 1, 1, 1, 1, 1}}};
  return batch;
}

struct BuiltModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<ModelInput> input;
};

BuiltModel Build(const proto::ModelConfig& config) {
  proto::DatasetConfig dataset;
  EXPECT_TRUE(ParseTextProto(kDataset, "dataset", &dataset).ok());
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, dataset);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  BuiltModel built{*std::move(model), nullptr};
  built.model->params().Initialize(5);
  // Every parameter random, biases too: where a row's hidden units are all dropped, a zero
  // output bias would leave a zero vector to normalize, whose gradient is unbounded.
  std::mt19937 rng(kParameterSeed);
  for (const auto& block : built.model->params().blocks()) {
    block->value = gc::RandomMatrix(&rng, static_cast<int>(block->value.rows()),
                                    static_cast<int>(block->value.cols()), 0.5f);
  }
  built.input = built.model->NewInput();
  absl::Status status = built.model->Prepare(SmallBatch(), built.input.get());
  EXPECT_TRUE(status.ok()) << status;
  return built;
}

// Builds `text` and the same config with every tower's dropout cleared (by `clear`), with equal
// weights, and checks that dropout acts in training passes only. Returns the dropping model,
// left in a training pass.
BuiltModel ExpectDropoutInTrainingOnly(const std::string& text,
                                       const std::function<void(proto::ModelConfig*)>& clear,
                                       Matrix* rows) {
  proto::ModelConfig with_dropout;
  EXPECT_TRUE(ParseTextProto(text, "model", &with_dropout).ok());
  proto::ModelConfig plain = with_dropout;
  clear(&plain);
  BuiltModel dropping = Build(with_dropout);
  BuiltModel reference = Build(plain);
  if (dropping.model == nullptr || reference.model == nullptr) return {};
  std::mt19937 rng(kRowSeed);
  *rows = gc::RandomMatrix(&rng, static_cast<int>(dropping.input->keys.size()), 3, 1.0f);

  dropping.model->Forward(*dropping.input, *rows);
  reference.model->Forward(*reference.input, *rows);
  EXPECT_EQ(dropping.model->output(0), reference.model->output(0));

  const nn::ForwardMode training{true, kTrainingSeed, kTrainingStep};
  dropping.model->params().forward_mode() = training;
  reference.model->params().forward_mode() = training;
  dropping.model->Forward(*dropping.input, *rows);
  reference.model->Forward(*reference.input, *rows);
  EXPECT_NE(dropping.model->output(0), reference.model->output(0));
  // The same seed and step give the same mask: a rerun trains alike.
  const Matrix trained = dropping.model->output(0);
  dropping.model->Forward(*dropping.input, *rows);
  EXPECT_EQ(dropping.model->output(0), trained);
  return dropping;
}

TEST(TowerDropoutTest, TwoTowerDropsInTrainingOnlyWithExactGradients) {
  Matrix rows;
  BuiltModel built = ExpectDropoutInTrainingOnly(
      kTwoTower,
      [](proto::ModelConfig* plain) {
        plain->mutable_two_tower()->mutable_user_tower()->clear_dropout();
        plain->mutable_two_tower()->mutable_item_tower()->clear_dropout();
      },
      &rows);
  ASSERT_NE(built.model, nullptr);
  Model& model = *built.model;
  auto loss = [&] {
    std::vector<nn::LossValue> losses;
    Matrix scratch;
    model.Forward(*built.input, rows);
    model.Backward(*built.input, &losses, &scratch);
    return 1.5 * losses[0].mean();
  };
  std::vector<nn::LossValue> losses;
  Matrix d_rows;
  model.Forward(*built.input, rows);
  model.Backward(*built.input, &losses, &d_rows);
  const Matrix analytic_rows = d_rows;
  const std::vector<Matrix> analytic_params = gc::CopyGrads(model.params());
  // Normalized vectors under a softmax are curved enough to need the extrapolated check.
  gc::ExpectGradientNearExtrapolated("rows", &rows, analytic_rows, loss);
  gc::ExpectParameterGradientsNear(&model.params(), analytic_params, loss,
                                   /*extrapolated=*/true);
}

TEST(TowerDropoutTest, AtnnTowersDropInTrainingOnly) {
  Matrix rows;
  BuiltModel built = ExpectDropoutInTrainingOnly(
      kAtnn,
      [](proto::ModelConfig* plain) {
        plain->mutable_atnn()->mutable_user_tower()->clear_dropout();
        plain->mutable_atnn()->mutable_item_tower()->clear_dropout();
      },
      &rows);
  EXPECT_NE(built.model, nullptr);
}

TEST(TowerDropoutTest, MindInterestMlpDropsInTrainingOnly) {
  Matrix rows;
  BuiltModel built = ExpectDropoutInTrainingOnly(
      kMind,
      [](proto::ModelConfig* plain) {
        plain->mutable_mind()->mutable_user_tower()->clear_dropout();
      },
      &rows);
  EXPECT_NE(built.model, nullptr);
}

}  // namespace
}  // namespace granary
