// ESMM (worker/models/esmm_model.h): its labels, gradients, config rules, and on a planted
// click-then-conversion stream its CTCVR AUC beside a shared-bottom model whose purchase head
// is trained on the clicked impressions only.
#include "worker/models/esmm_model.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"
#include "worker/job_config.h"
#include "worker/models/model_config.h"
#include "worker/models/model_factory.h"
#include "worker/nn/loss.h"
#include "worker/train/metrics.h"

namespace granary {
namespace {

using testing_batch::SmallBatch;

constexpr char kBuyColumn[] = R"(columns { name: "buy" role: LABEL }
)";

// kDataset of model_testing.h and a conversion label.
proto::DatasetConfig Dataset() {
  proto::DatasetConfig dataset;
  EXPECT_TRUE(
      ParseTextProto(std::string(testing_batch::kDataset) + kBuyColumn, "dataset", &dataset).ok());
  return dataset;
}

constexpr char kEsmm[] = R"(
embedding_dim: 3
esmm { fields: ["user_id", "item_id", "tags", "history"] ctr_task: "click" cvr_task: "buy" }
tasks { name: "click" head: BINARY label_column: "click" hidden_sizes: [4] }
tasks { name: "buy" head: BINARY label_column: "buy" hidden_sizes: [5] }
)";

proto::ModelConfig Config(const std::string& text = kEsmm) {
  proto::ModelConfig config;
  EXPECT_TRUE(ParseTextProto(text, "model", &config).ok());
  return config;
}

// SmallBatch (clicks 1, 0, 1) with buy labels 1, 1 (on the unclicked sample 1), missing.
Batch BatchWithBuys() {
  Batch batch = SmallBatch();
  batch.labels.push_back({"buy", {1, 1, 0}, {1, 1, 0}});
  return batch;
}

std::unique_ptr<Model> Build(const proto::ModelConfig& config) {
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(config, Dataset());
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

TEST(EsmmModelTest, AppendsTheCtcvrTaskWithDefaults) {
  std::unique_ptr<Model> model = Build(Config());
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(model->tasks().size(), 3u);
  EXPECT_EQ(model->tasks()[0].loss_weight(), 1.0f);
  EXPECT_EQ(model->tasks()[1].loss_weight(), 0.0f);  // pCVR learns through pCTCVR only
  EXPECT_EQ(model->tasks()[2].name(), "ctcvr");
  EXPECT_EQ(model->tasks()[2].head(), proto::TaskConfig::BINARY);
  EXPECT_EQ(model->tasks()[2].loss_weight(), 1.0f);
  EXPECT_EQ(ArchitectureName(Config()), "esmm");
}

TEST(EsmmModelTest, ConversionCountsOnClicksAndCtcvrOnEveryImpression) {
  std::unique_ptr<Model> model = Build(Config());
  ASSERT_NE(model, nullptr);
  std::unique_ptr<ModelInput> input = model->NewInput();
  ASSERT_TRUE(model->Prepare(BatchWithBuys(), input.get()).ok());
  // buy: sample 1 was not clicked, sample 2 has no buy label.
  EXPECT_EQ(input->has_label[1], (std::vector<uint8_t>{1, 0, 0}));
  // ctcvr: clicked and bought; the unclicked sample 1 is a 0 whatever its buy cell holds; the
  // clicked sample 2 without a buy label has none.
  EXPECT_EQ(input->has_label[2], (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(input->labels[2][0], 1.0f);
  EXPECT_EQ(input->labels[2][1], 0.0f);
  // A second batch through the same input: no stale labels.
  Batch no_clicks = BatchWithBuys();
  no_clicks.labels[0].values = {0, 0, 0};
  ASSERT_TRUE(model->Prepare(no_clicks, input.get()).ok());
  EXPECT_EQ(input->has_label[1], (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(input->has_label[2], (std::vector<uint8_t>{1, 1, 1}));
  EXPECT_EQ(input->labels[2], (std::vector<float>{0, 0, 0}));
}

TEST(EsmmModelTest, CtcvrOutputIsTheProductOfTheTowers) {
  std::unique_ptr<Model> model = Build(Config());
  ASSERT_NE(model, nullptr);
  model->params().Initialize(3);
  std::unique_ptr<ModelInput> input = model->NewInput();
  ASSERT_TRUE(model->Prepare(BatchWithBuys(), input.get()).ok());
  std::mt19937 rng(5);
  const nn::Matrix rows = nn::gradient_check::RandomMatrix(
      &rng, static_cast<int>(input->keys.size()), model->embedding_dim(), 0.5f);
  model->Forward(*input, rows);
  for (int b = 0; b < 3; ++b) {
    const double product =
        nn::Sigmoid(model->output(0)(b, 0)) * nn::Sigmoid(model->output(1)(b, 0));
    EXPECT_NEAR(nn::Sigmoid(model->output(2)(b, 0)), product, 1e-6) << b;
  }
  EXPECT_NE(model->output(0)(0, 0), model->output(1)(0, 0));  // two towers
}

TEST(EsmmModelTest, GradientsMatchFiniteDifferences) {
  std::unique_ptr<Model> model = Build(Config());
  ASSERT_NE(model, nullptr);
  // click: 3 samples; buy: the clicked sample 0 (reported, weight 0); ctcvr: samples 0, 1.
  testing_batch::ExpectModelGradientsMatch(model.get(), BatchWithBuys(), {3, 1, 2}, 6);
}

TEST(EsmmModelTest, WeightedCvrLossAndNumericFieldsGradientsMatch) {
  proto::ModelConfig config = Config();
  config.mutable_tasks(1)->set_loss_weight(0.5f);
  config.mutable_esmm()->set_ctcvr_loss_weight(2.0f);
  config.mutable_esmm()->add_numeric_fields("views");
  std::unique_ptr<Model> model = Build(config);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->tasks()[1].loss_weight(), 0.5f);
  EXPECT_EQ(model->tasks()[2].loss_weight(), 2.0f);
  testing_batch::ExpectModelGradientsMatch(model.get(), BatchWithBuys(), {3, 1, 2}, 3);
}

// A job around `model_text` in a file, so that errors carry its lines.
std::string WriteJob(const std::string& model_text) {
  const std::string path = ::testing::TempDir() + "/esmm_model_test." +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                           ".pbtxt";
  std::ofstream(path) << "dataset {\n"
                      << testing_batch::kDataset << kBuyColumn << "}\nmodel {\n"
                      << model_text
                      << "}\ntraining { batch_size: 4 epochs: 1 train_files: \"train.tsv\" }\n";
  return path;
}

void ExpectJobError(const std::string& model_text, const std::string& error) {
  const std::string path = WriteJob(model_text);
  absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << spec.status();
  EXPECT_NE(spec.status().message().find(error), std::string::npos) << spec.status();
  EXPECT_NE(spec.status().message().find(path + ":"), std::string::npos) << spec.status();
}

TEST(EsmmModelTest, ConfigErrorsNameTheFieldAndWhy) {
  const std::string fields = R"(embedding_dim: 3
esmm { fields: "user_id"
)";
  const std::string tasks = R"(tasks { name: "click" head: BINARY label_column: "click" }
tasks { name: "buy" head: BINARY label_column: "buy" }
)";
  EXPECT_TRUE(
      LoadJobConfig(WriteJob(fields + "ctr_task: \"click\" cvr_task: \"buy\" }\n" + tasks)).ok());
  ExpectJobError(fields + "ctr_task: \"click\" cvr_task: \"purchase\" }\n" + tasks,
                 "cvr_task 'purchase' is not a task of the job");
  ExpectJobError(fields + "ctr_task: \"click\" }\n" + tasks, "cvr_task '' is not a task");
  ExpectJobError(fields + "ctr_task: \"click\" cvr_task: \"click\" }\n" + tasks,
                 "cvr_task is the same task as ctr_task");
  ExpectJobError(fields + "ctr_task: \"click\" cvr_task: \"grade\" }\n" +
                     R"(tasks { name: "click" head: BINARY label_column: "click" }
tasks { name: "grade" head: MULTICLASS num_classes: 3 label_column: "grade" }
)",
                 "cvr_task 'grade' must be a BINARY task");
  ExpectJobError(fields + "ctr_task: \"click\" cvr_task: \"buy\" ctcvr_task: \"buy\" }\n" + tasks,
                 "ctcvr_task 'buy' is the name of a task of the job");
  ExpectJobError(fields + "ctr_task: \"click\" cvr_task: \"buy\" ctcvr_loss_weight: -1 }\n" + tasks,
                 "ctcvr_loss_weight must be >= 0");
  ExpectJobError(
      fields + "ctr_task: \"click\" cvr_task: \"buy\" }\n" + tasks +
          R"(tasks { name: "grade" head: MULTICLASS num_classes: 3 label_column: "grade" }
)",
      "esmm needs exactly two tasks");
  ExpectJobError(R"(embedding_dim: 3
esmm { fields: "views" ctr_task: "click" cvr_task: "buy" }
)" + tasks,
                 "column 'views' is not CATEGORICAL");
  // The CVR label is a LABEL column like any task's.
  ExpectJobError(fields + "ctr_task: \"click\" cvr_task: \"buy\" }\n" +
                     R"(tasks { name: "click" head: BINARY label_column: "click" }
tasks { name: "buy" head: BINARY label_column: "views" }
)",
                 "label_column 'views' is not a LABEL column");
}

TEST(EsmmModelTest, LoadsTheMovieLensJob) {
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/movielens_esmm.pbtxt"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(spec->job.model(), spec->dataset);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->tasks().size(), 3u);
}

}  // namespace
}  // namespace granary
