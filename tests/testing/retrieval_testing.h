// What the retrieval model tests (two_tower, mind, atnn, ralm_user) share: a small batch of six
// samples over click, user_id, age, item_id and genres. Sample 2 is a negative (it takes no part
// in the in-batch losses), sample 3 repeats item 7 (an accidental hit for sample 0). Positives'
// first genres: 21 (samples 0, 1, 3, the major category) and 23 (samples 4, 5). And the fixture
// those tests start from: a model built from text configs, its input prepared, random rows.
#ifndef GRANARY_TESTS_TESTING_RETRIEVAL_TESTING_H_
#define GRANARY_TESTS_TESTING_RETRIEVAL_TESTING_H_

#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"
#include "worker/batch.h"
#include "worker/models/model.h"
#include "worker/models/model_factory.h"
#include "worker/nn/loss.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace testing_batch {

// The dataset config of RetrievalSmallBatch's columns.
inline constexpr char kRetrievalDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "age" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL }
columns { name: "genres" role: MULTI_CATEGORICAL }
)";

inline Batch RetrievalSmallBatch() {
  Batch batch;
  batch.size = 6;
  batch.labels = {{"click", {1, 1, 0, 1, 1, 1}, {1, 1, 1, 1, 1, 1}}};
  batch.categoricals = {{"user_id", {11, 12, 11, 13, 14, 15}, {1, 1, 1, 1, 1, 1}},
                        {"age", {31, 32, 31, 31, 33, 32}, {1, 1, 1, 1, 1, 1}},
                        {"item_id", {7, 8, 9, 7, 10, 12}, {1, 1, 1, 1, 1, 1}}};
  batch.multi_categoricals = {{"genres", {0, 2, 3, 4, 6, 7, 8}, {21, 22, 21, 23, 21, 22, 23, 23}}};
  return batch;
}

// A SEQUENCE column "history" whose one step field, CATEGORICAL "item", holds `keys`, sample
// b's steps being keys[offsets[b], offsets[b + 1]): the behaviours of RetrievalSmallBatch's
// samples for the models that read a history (mind, ralm_user).
inline SequenceColumn ItemHistory(std::vector<uint32_t> offsets, std::vector<uint64_t> keys) {
  SequenceColumn history;
  history.name = "history";
  history.offsets = std::move(offsets);
  SequenceField item;
  item.name = "item";
  item.kind = proto::StepFieldConfig::CATEGORICAL;
  item.keys = std::move(keys);
  history.fields = {item};
  return history;
}

}  // namespace testing_batch

// A model of type ModelT built by CreateModel from a dataset and a model text, with its
// parameters drawn, its input prepared from a batch and random rows [keys, 3] for it.
template <typename ModelT>
class PreparedModelTest : public ::testing::Test {
 protected:
  struct Draw {
    int param_seed = 5;
    int row_seed = 3;
    float row_scale = 1.0f;
  };

  // The error of CreateModel or Prepare, else OK with model_, input_ and rows_ set.
  absl::Status Build(const std::string& dataset_text, const std::string& model_text,
                     const Batch& batch, const Draw& draw) {
    EXPECT_TRUE(ParseTextProto(dataset_text, "dataset", &dataset_).ok());
    EXPECT_TRUE(ParseTextProto(model_text, "model", &config_).ok());
    absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config_, dataset_);
    if (!model.ok()) return model.status();
    model_.reset(static_cast<ModelT*>(model->release()));
    model_->params().Initialize(draw.param_seed);
    input_ = model_->NewInput();
    absl::Status status = model_->Prepare(batch, input_.get());
    std::mt19937 rng(draw.row_seed);
    rows_ = nn::gradient_check::RandomMatrix(&rng, static_cast<int>(input_->keys.size()), 3,
                                             draw.row_scale);
    return status;
  }

  // Runs Forward and Backward on rows_; returns the first task's mean loss times `weight`.
  double FirstTaskLoss(double weight) {
    std::vector<nn::LossValue> losses;
    nn::Matrix scratch;
    model_->Forward(*input_, rows_);
    model_->Backward(*input_, &losses, &scratch);
    return weight * losses[0].mean();
  }

  proto::DatasetConfig dataset_;
  proto::ModelConfig config_;
  std::unique_ptr<ModelT> model_;
  std::unique_ptr<ModelInput> input_;
  nn::Matrix rows_;
};

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_RETRIEVAL_TESTING_H_
