// SharedBottomConfig, MmoeConfig and DupnConfig.dropout: the shared bottom's, the experts' and
// DUPN's user MLP drop units in training passes only, so the model evaluates as the same model
// without dropout, a training pass differs, and its gradients (one fixed mask) are exact.
#include <memory>
#include <random>
#include <string>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"
#include "worker/models/dupn_model.h"
#include "worker/models/mmoe_model.h"
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
mmoe { fields: ["user_id", "item_id", "tags", "history"] num_experts: 3 expert_mlp: [5, 4] }
)";

constexpr char kDupn[] = R"(
embedding_dim: 3
dupn {
  user_fields: "user_id"
  item_fields: ["item_id", "tags"]
  behavior_column: "history"
  lstm_hidden: 4
  attention_hidden: 3
  user_mlp: [5, 4]
}
)";

// A training pass's seed and step: any fixed pair gives one mask.
constexpr uint64_t kTrainingSeed = 11;
constexpr int64_t kTrainingStep = 1;

// Builds `with_dropout` and the same config with its architecture's dropout cleared (by
// `clear`), with equal weights, and checks the contract on both tasks' outputs.
template <typename ModelType, typename Clear>
void ExpectDropoutInTrainingOnly(const proto::ModelConfig& with_dropout, Clear clear) {
  proto::ModelConfig plain = with_dropout;
  clear(&plain);
  absl::StatusOr<std::unique_ptr<ModelType>> dropping =
      ModelType::Create(with_dropout, SmallDataset());
  absl::StatusOr<std::unique_ptr<ModelType>> reference = ModelType::Create(plain, SmallDataset());
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
  (*reference)->Forward(*input, rows);
  for (int task = 0; task < 2; ++task) {
    EXPECT_EQ((*dropping)->output(task), (*reference)->output(task)) << task;
  }
  const nn::Matrix evaluated = (*dropping)->output(0);

  (*dropping)->params().forward_mode() = nn::ForwardMode{true, kTrainingSeed, kTrainingStep};
  (*dropping)->Forward(*input, rows);
  EXPECT_NE((*dropping)->output(0), evaluated);
  // The same seed and step give the same mask: a rerun trains alike.
  const nn::Matrix trained = (*dropping)->output(0);
  (*dropping)->Forward(*input, rows);
  EXPECT_EQ((*dropping)->output(0), trained);
  testing_batch::ExpectModelGradientsMatch(dropping->get(), SmallBatch(), {3, 2}, 6);
}

TEST(SharedBottomDropoutTest, ActsInTrainingOnly) {
  proto::ModelConfig config = ModelWithTasks(kSharedBottom);
  config.mutable_shared_bottom()->set_dropout(0.5f);
  ExpectDropoutInTrainingOnly<SharedBottomModel>(
      config, [](proto::ModelConfig* plain) { plain->mutable_shared_bottom()->clear_dropout(); });
}

TEST(MmoeDropoutTest, ActsInTrainingOnly) {
  proto::ModelConfig config = ModelWithTasks(kMmoe);
  config.mutable_mmoe()->set_dropout(0.5f);
  ExpectDropoutInTrainingOnly<MmoeModel>(
      config, [](proto::ModelConfig* plain) { plain->mutable_mmoe()->clear_dropout(); });
}

TEST(DupnDropoutTest, ActsInTrainingOnly) {
  proto::ModelConfig config = ModelWithTasks(kDupn);
  config.mutable_dupn()->set_dropout(0.5f);
  ExpectDropoutInTrainingOnly<DupnModel>(
      config, [](proto::ModelConfig* plain) { plain->mutable_dupn()->clear_dropout(); });
}

}  // namespace
}  // namespace granary
