// Model::ForwardOneUser against Forward on request-shaped batches (one user, N candidate items)
// for the architectures that override it (DUPN, two_tower, dat), and on batches that are not
// one user's, which the overrides must score as Forward does.
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"
#include "tests/testing/model_testing.h"
#include "tests/testing/retrieval_testing.h"
#include "worker/models/model_factory.h"

namespace granary {
namespace {

namespace gc = nn::gradient_check;

constexpr float kTolerance = 1e-5f;

constexpr char kDupn[] = R"(
embedding_dim: 3
dupn {
  user_fields: "user_id"
  item_fields: ["item_id", "tags"]
  behavior_column: "history"
  lstm_hidden: 4
  attention_hidden: 3
  user_mlp: [5]
  numeric_fields: ["views", "score"]
  cross_layers: 1
}
)";

// One user (11) with a three-step history and `n` candidates over testing_batch::kDataset. The
// candidates differ in item, tags and numeric fields (which are statistics of the user and the
// item); candidate 1 is an item of the history, candidate 3 has no item, candidate 2 no tags,
// candidate 5 no score. `history_length` 0 gives the user an empty history.
Batch DupnRequest(int n, int history_length = 3) {
  const std::vector<uint64_t> history_items = {8, 9, 7};
  const std::vector<float> history_ratings = {1, 0.5f, -1};
  Batch batch;
  batch.size = n;
  FloatColumn click{"click", {}, {}};
  FloatColumn grade{"grade", {}, {}};
  CategoricalColumn user{"user_id", {}, {}};
  CategoricalColumn item{"item_id", {}, {}};
  MultiCategoricalColumn tags{"tags", {0}, {}};
  SequenceColumn history;
  history.name = "history";
  history.offsets = {0};
  history.fields = {{"item_id", proto::StepFieldConfig::CATEGORICAL, {}, {}},
                    {"rating", proto::StepFieldConfig::NUMERIC, {}, {}}};
  FloatColumn views{"views", {}, {}};
  FloatColumn score{"score", {}, {}};
  for (int c = 0; c < n; ++c) {
    click.values.push_back(static_cast<float>(c % 2));
    click.present.push_back(1);
    grade.values.push_back(static_cast<float>(c % 3));
    grade.present.push_back(1);
    user.keys.push_back(11);
    user.present.push_back(1);
    item.keys.push_back(c == 1 ? 9 : (c == 3 ? 0 : 100 + c));
    item.present.push_back(c == 3 ? 0 : 1);
    if (c != 2) tags.keys.push_back(20 + c % 4);
    if (c % 2 == 1) tags.keys.push_back(30);
    tags.offsets.push_back(static_cast<uint32_t>(tags.keys.size()));
    for (int t = 0; t < history_length; ++t) {
      history.fields[0].keys.push_back(history_items[t]);
      history.fields[1].values.push_back(history_ratings[t]);
    }
    history.offsets.push_back(static_cast<uint32_t>(history.fields[0].keys.size()));
    views.values.push_back(0.25f * static_cast<float>(c) - 0.5f);
    views.present.push_back(1);
    score.values.push_back(c == 5 ? 0.0f : 1.0f - 0.3f * static_cast<float>(c));
    score.present.push_back(c == 5 ? 0 : 1);
  }
  batch.labels = {click, grade};
  batch.categoricals = {user, item};
  batch.multi_categoricals = {tags};
  batch.sequences = {history};
  batch.numerics = {views, score};
  return batch;
}

// Builds the model of `model_text` over `dataset_text` with every dense parameter drawn
// uniformly in [-0.5, 0.5] (biases too, so that no layer is trivially zero).
std::unique_ptr<Model> RandomModel(const std::string& model_text, const std::string& dataset_text) {
  proto::DatasetConfig dataset;
  proto::ModelConfig config;
  EXPECT_TRUE(ParseTextProto(dataset_text, "dataset", &dataset).ok());
  EXPECT_TRUE(ParseTextProto(model_text, "model", &config).ok());
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, dataset);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  std::mt19937 rng(17);
  for (const auto& block : (*model)->params().blocks()) {
    block->value = gc::RandomMatrix(&rng, static_cast<int>(block->value.rows()),
                                    static_cast<int>(block->value.cols()), 0.5f);
  }
  return *std::move(model);
}

// Builds two models of `model_text` with the same random parameters (RandomModel), prepares
// `batch`, runs Forward on one and ForwardOneUser on the other (so that no activation left by
// Forward can stand in for one ForwardOneUser failed to compute) on the same random rows, and
// expects every task's outputs to agree to kTolerance.
void ExpectForwardOneUserMatchesForward(const std::string& model_text,
                                        const std::string& dataset_text, const Batch& batch) {
  std::unique_ptr<Model> per_item = RandomModel(model_text, dataset_text);
  std::unique_ptr<Model> one_user = RandomModel(model_text, dataset_text);
  ASSERT_NE(per_item, nullptr);
  ASSERT_NE(one_user, nullptr);
  std::unique_ptr<ModelInput> input = per_item->NewInput();
  ASSERT_TRUE(per_item->Prepare(batch, input.get()).ok());
  std::mt19937 rng(5);
  const nn::Matrix rows =
      gc::RandomMatrix(&rng, static_cast<int>(input->keys.size()), per_item->embedding_dim(), 1.0f);
  per_item->Forward(*input, rows);
  one_user->ForwardOneUser(*input, rows);
  for (size_t k = 0; k < per_item->tasks().size(); ++k) {
    const nn::Matrix& expected = per_item->output(static_cast<int>(k));
    const nn::Matrix& actual = one_user->output(static_cast<int>(k));
    ASSERT_EQ(actual.rows(), batch.size) << "task " << k;
    ASSERT_EQ(actual.cols(), expected.cols()) << "task " << k;
    EXPECT_LE((actual - expected).cwiseAbs().maxCoeff(), kTolerance) << "task " << k;
    // The candidates are told apart: a model that scored every candidate alike would pass
    // the comparison above only if Forward did too.
    if (batch.size > 2) {
      EXPECT_GT((expected.row(0) - expected.row(2)).norm(), 0) << "task " << k;
    }
  }
}

std::string DupnText() { return std::string(kDupn) + testing_batch::kTasks; }

class DupnForwardOneUserTest : public ::testing::TestWithParam<int> {};

TEST_P(DupnForwardOneUserTest, MatchesForwardOnOneUsersCandidates) {
  ExpectForwardOneUserMatchesForward(DupnText(), testing_batch::kDataset, DupnRequest(GetParam()));
}

TEST_P(DupnForwardOneUserTest, MatchesForwardForAUserWithoutHistory) {
  ExpectForwardOneUserMatchesForward(DupnText(), testing_batch::kDataset,
                                     DupnRequest(GetParam(), 0));
}

INSTANTIATE_TEST_SUITE_P(Candidates, DupnForwardOneUserTest, ::testing::Values(1, 7));

// A step field that depends on the candidate (as MovieLens' history "similarity" to the
// target) makes the LSTM per candidate: the scores must still be Forward's.
TEST(DupnForwardOneUser, MatchesForwardWhenAStepFieldDependsOnTheCandidate) {
  Batch batch = DupnRequest(7);
  std::vector<float>& ratings = batch.sequences[0].fields[1].values;
  for (size_t i = 0; i < ratings.size(); ++i) ratings[i] += 0.1f * static_cast<float>(i / 3);
  ExpectForwardOneUserMatchesForward(DupnText(), testing_batch::kDataset, batch);
}

// A batch of several users (a training batch) is scored as Forward scores it, not as sample
// 0's user.
TEST(DupnForwardOneUser, MatchesForwardOnABatchOfSeveralUsers) {
  ExpectForwardOneUserMatchesForward(DupnText(), testing_batch::kDataset,
                                     testing_batch::SmallBatch());
  Batch batch = DupnRequest(7);
  batch.categoricals[0].keys[4] = 12;
  ExpectForwardOneUserMatchesForward(DupnText(), testing_batch::kDataset, batch);
}

using testing_batch::kRetrievalDataset;

constexpr char kTowers[] = R"(
    retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.5 }
    user_tower { fields: ["user_id", "age"] mlp: [3] }
    item_tower { fields: ["item_id", "genres"] mlp: [3] }
    loss: IN_BATCH_SOFTMAX
)";
constexpr char kClickTask[] =
    R"(tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 })";

std::string TwoTowerText() {
  return absl::StrCat("embedding_dim: 3 two_tower {", kTowers, "}", kClickTask);
}
std::string DatText() {
  return absl::StrCat("embedding_dim: 3 dat { towers {", kTowers, "} category_column: \"genres\" }",
                      kClickTask);
}

// testing_batch::RetrievalSmallBatch with every sample's user and age set to sample 0's.
Batch RetrievalRequest() {
  Batch batch = testing_batch::RetrievalSmallBatch();
  for (CategoricalColumn& column : batch.categoricals) {
    if (column.name == "item_id") continue;
    std::fill(column.keys.begin(), column.keys.end(), column.keys[0]);
  }
  return batch;
}

TEST(TwoTowerForwardOneUser, MatchesForwardOnOneUsersCandidates) {
  for (const std::string& text : {TwoTowerText(), DatText()}) {
    SCOPED_TRACE(text);
    ExpectForwardOneUserMatchesForward(text, kRetrievalDataset, RetrievalRequest());
    ExpectForwardOneUserMatchesForward(text, kRetrievalDataset,
                                       testing_batch::RetrievalSmallBatch());
  }
}

}  // namespace
}  // namespace granary
