// What the model tests (DUPN, shared bottom, MMoE) share: a small dataset config and batch
// (labels of a BINARY and a MULTICLASS task; categorical, multi-categorical, sequence and
// numeric fields, with a missing item, a missing label, an empty history, an item shared with a
// history and a missing numeric cell), and a numeric gradient check of a whole Model.
#ifndef GRANARY_TESTS_TESTING_MODEL_TESTING_H_
#define GRANARY_TESTS_TESTING_MODEL_TESTING_H_

#include <random>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"
#include "worker/batch.h"
#include "worker/models/model.h"

namespace granary {
namespace testing_batch {

inline constexpr char kDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "grade" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL hash_space: "item" }
columns { name: "tags" role: MULTI_CATEGORICAL }
columns {
  name: "history"
  role: SEQUENCE
  step_fields { name: "item_id" kind: CATEGORICAL hash_space: "item" }
  step_fields { name: "rating" kind: NUMERIC }
}
columns { name: "views" role: NUMERIC }
columns { name: "score" role: NUMERIC }
)";

// Two tasks over kDataset, appended to an architecture's text: click (BINARY, one hidden
// layer) and grade (3 classes, weight 0.5, no hidden layer).
inline constexpr char kTasks[] = R"(
tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 hidden_sizes: [4] }
tasks { name: "grade" head: MULTICLASS label_column: "grade" num_classes: 3 loss_weight: 0.5 }
)";

// kDataset, parsed.
inline proto::DatasetConfig SmallDataset() {
  proto::DatasetConfig dataset;
  EXPECT_TRUE(ParseTextProto(kDataset, "dataset", &dataset).ok());
  return dataset;
}

// An architecture's text followed by kTasks, parsed.
inline proto::ModelConfig ModelWithTasks(const std::string& architecture) {
  proto::ModelConfig config;
  EXPECT_TRUE(ParseTextProto(architecture + kTasks, "model", &config).ok());
  return config;
}

// Three samples; sample 1 has no history, no grade and no score, sample 2 has no item and
// repeats item 7 (sample 0's item) in its history.
inline Batch SmallBatch() {
  Batch batch;
  batch.size = 3;
  batch.labels = {{"click", {1, 0, 1}, {1, 1, 1}}, {"grade", {2, 0, 1}, {1, 0, 1}}};
  batch.categoricals = {{"user_id", {11, 12, 11}, {1, 1, 1}}, {"item_id", {7, 8, 9}, {1, 1, 0}}};
  batch.multi_categoricals = {{"tags", {0, 2, 2, 3}, {21, 22, 21}}};
  SequenceColumn history;
  history.name = "history";
  history.offsets = {0, 2, 2, 5};
  history.fields = {{"item_id", proto::StepFieldConfig::CATEGORICAL, {8, 9, 7, 8, 7}, {}},
                    {"rating", proto::StepFieldConfig::NUMERIC, {}, {1, 0.5, -1, 0.25, 2}}};
  batch.sequences = {history};
  batch.numerics = {{"views", {0.5f, 1.5f, -1}, {1, 1, 1}}, {"score", {2, 0, -0.5f}, {1, 0, 1}}};
  return batch;
}

// Draws the model's parameters, prepares `batch`, runs Forward and Backward on random rows, checks
// every loss count against `counts` and the gradients of the rows and of every dense parameter
// against central differences of sum_k loss_weight_k * mean loss_k. ReLU's kink makes a central
// difference wrong wherever some pre-activation lies within the step of 0; with a few samples and
// layers that happens for some draws, so each test fixes a `seed` whose draw keeps clear of the
// kinks.
inline void ExpectModelGradientsMatch(Model* model, const Batch& batch,
                                      const std::vector<int64_t>& counts, int seed) {
  namespace gc = nn::gradient_check;
  std::unique_ptr<ModelInput> input = model->NewInput();
  ASSERT_TRUE(model->Prepare(batch, input.get()).ok());
  std::mt19937 rng(seed);
  // Every parameter random, biases too: a zero bias behind a layer whose ReLUs are all off
  // would put pre-activations exactly on the kink.
  for (const auto& block : model->params().blocks()) {
    block->value = gc::RandomMatrix(&rng, static_cast<int>(block->value.rows()),
                                    static_cast<int>(block->value.cols()), 0.5f);
  }
  nn::Matrix rows =
      gc::RandomMatrix(&rng, static_cast<int>(input->keys.size()), model->embedding_dim(), 0.5f);
  std::vector<nn::LossValue> losses;
  nn::Matrix d_rows;
  model->Forward(*input, rows);
  model->Backward(*input, &losses, &d_rows);
  ASSERT_EQ(losses.size(), counts.size());
  for (size_t k = 0; k < counts.size(); ++k) EXPECT_EQ(losses[k].count, counts[k]) << k;
  const nn::Matrix analytic_rows = d_rows;
  const std::vector<nn::Matrix> analytic_params = gc::CopyGrads(model->params());

  auto loss = [&]() {
    std::vector<nn::LossValue> values;
    nn::Matrix scratch;
    model->Forward(*input, rows);
    model->Backward(*input, &values, &scratch);
    double total = 0;
    for (size_t k = 0; k < values.size(); ++k) {
      total += model->tasks()[k].loss_weight() * values[k].mean();
    }
    return total;
  };
  gc::ExpectGradientNear("embedding rows", &rows, analytic_rows, loss);
  gc::ExpectParameterGradientsNear(&model->params(), analytic_params, loss);
}

}  // namespace testing_batch
}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_MODEL_TESTING_H_
