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
#include "tests/testing/click_and_buy_biases.h"
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

// --- A planted stream with sample selection bias ----------------------------------------
// Users and items have latent vectors and biases; an impression of item i to user u is
// clicked with probability sigmoid(kClickScale <p_u, q_i> + a_u + b_i + kClickBias) and, only
// once clicked, converted with probability sigmoid(kConversionScale <r_u, s_i> + c_u + d_i +
// kConversionBias): conversions are observed after clicks only. Clicks are rare (about 1 in
// 6) and items many (about 40 impressions each), so the clicked impressions alone are a
// sparse sample of the space the purchase is ranked over: the regime ESMM was made for. Both
// models see the ids alone.
constexpr int kPlantedUsers = 300;
constexpr int kPlantedItems = 1000;
constexpr int kPlantedLatentDim = 4;
constexpr float kClickScale = 1.5f;
constexpr float kClickBias = -2.0f;
constexpr float kConversionScale = 1.5f;
constexpr float kConversionBias = -0.5f;
constexpr int kPlantedTrainBatches = 600;
constexpr int kPlantedEvalBatches = 150;
constexpr int kPlantedBatchSize = 64;
constexpr int kPlantedEpochs = 4;
constexpr float kLearningRate = 0.05f;
constexpr float kRowInitLimit = 0.1f;

constexpr char kPlantedDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "buy" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL }
)";

struct PlantedStream {
  std::vector<Batch> train, eval;
  // Per eval impression: whether it was clicked, converted, and the true P(click and buy).
  std::vector<float> eval_click, eval_buy, eval_ctcvr_probability;
};

PlantedStream MakePlantedStream(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(float{kPlantedLatentDim}));
  auto draw = [&](int n) {
    nn::Matrix m(n, kPlantedLatentDim);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
    return m;
  };
  const nn::Matrix p = draw(kPlantedUsers), q = draw(kPlantedItems);
  const nn::Matrix r = draw(kPlantedUsers), s = draw(kPlantedItems);
  const ClickAndBuyBiases biases = DrawClickAndBuyBiases(kPlantedUsers, kPlantedItems, &rng);
  std::uniform_int_distribution<int> user(0, kPlantedUsers - 1), item(0, kPlantedItems - 1);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  PlantedStream stream;
  for (int b = 0; b < kPlantedTrainBatches + kPlantedEvalBatches; ++b) {
    const bool eval = b >= kPlantedTrainBatches;
    Batch batch;
    batch.size = kPlantedBatchSize;
    FloatColumn click{"click", {}, {}}, buy{"buy", {}, {}};
    CategoricalColumn users{"user_id", {}, {}}, items{"item_id", {}, {}};
    for (int k = 0; k < kPlantedBatchSize; ++k) {
      const int u = user(rng), i = item(rng);
      const double p_click = nn::Sigmoid(kClickScale * p.row(u).dot(q.row(i)) +
                                         biases.user_click[u] + biases.item_click[i] + kClickBias);
      const double p_buy = nn::Sigmoid(kConversionScale * r.row(u).dot(s.row(i)) +
                                       biases.user_buy[u] + biases.item_buy[i] + kConversionBias);
      const bool clicked = coin(rng) < p_click;
      const bool bought = coin(rng) < p_buy;  // observed only if clicked
      users.keys.push_back(u + 1);
      users.present.push_back(1);
      items.keys.push_back(i + 1);
      items.present.push_back(1);
      click.values.push_back(clicked ? 1 : 0);
      click.present.push_back(1);
      buy.values.push_back(clicked && bought ? 1 : 0);
      buy.present.push_back(clicked ? 1 : 0);
      if (eval) {
        stream.eval_click.push_back(clicked ? 1 : 0);
        stream.eval_buy.push_back(clicked && bought ? 1 : 0);
        stream.eval_ctcvr_probability.push_back(static_cast<float>(p_click * p_buy));
      }
    }
    batch.labels = {click, buy};
    batch.categoricals = {users, items};
    (eval ? stream.eval : stream.train).push_back(std::move(batch));
  }
  return stream;
}

// Trains `model` on the stream with Adagrad on the dense parameters and the rows (the rows
// held here, as the servers would), then returns the logits of tasks 0 and 1 of every eval
// impression, [N, 2].
nn::Matrix TrainAndScore(Model* model, const PlantedStream& stream) {
  model->params().Initialize(1);
  absl::flat_hash_map<uint64_t, nn::Matrix> row_of, row_sum_sq;
  std::vector<nn::Matrix> dense_sum_sq;
  for (const auto& block : model->params().blocks()) {
    dense_sum_sq.push_back(nn::Matrix::Zero(block->value.rows(), block->value.cols()));
  }
  const int dim = model->embedding_dim();
  std::unique_ptr<ModelInput> input = model->NewInput();
  nn::Matrix rows, d_rows;
  std::vector<nn::LossValue> losses;
  auto gather = [&]() {
    rows.resize(static_cast<Eigen::Index>(input->keys.size()), dim);
    for (size_t k = 0; k < input->keys.size(); ++k) {
      auto [it, inserted] = row_of.try_emplace(input->keys[k]);
      if (inserted) {
        std::mt19937 rng(static_cast<uint32_t>(input->keys[k]));
        std::uniform_real_distribution<float> init(-kRowInitLimit, kRowInitLimit);
        it->second.resize(1, dim);
        for (int d = 0; d < dim; ++d) it->second(0, d) = init(rng);
        row_sum_sq[input->keys[k]] = nn::Matrix::Zero(1, dim);
      }
      rows.row(static_cast<Eigen::Index>(k)) = it->second;
    }
  };
  auto adagrad = [](nn::Matrix* value, nn::Matrix* sum_sq, const auto& grad) {
    sum_sq->array() += grad.array().square();
    value->array() -= kLearningRate * grad.array() / (sum_sq->array().sqrt() + 1e-8f);
  };
  for (int epoch = 0; epoch < kPlantedEpochs; ++epoch) {
    for (const Batch& batch : stream.train) {
      EXPECT_TRUE(model->Prepare(batch, input.get()).ok());
      gather();
      model->Forward(*input, rows);
      model->Backward(*input, &losses, &d_rows);
      for (size_t b = 0; b < model->params().blocks().size(); ++b) {
        nn::ParamBlock& block = *model->params().blocks()[b];
        adagrad(&block.value, &dense_sum_sq[b], block.grad);
      }
      for (size_t k = 0; k < input->keys.size(); ++k) {
        adagrad(&row_of[input->keys[k]], &row_sum_sq[input->keys[k]],
                d_rows.row(static_cast<Eigen::Index>(k)));
      }
    }
  }
  nn::Matrix scores(static_cast<Eigen::Index>(stream.eval.size()) * kPlantedBatchSize, 2);
  Eigen::Index at = 0;
  for (const Batch& batch : stream.eval) {
    EXPECT_TRUE(model->Prepare(batch, input.get()).ok());
    gather();
    model->Forward(*input, rows);
    scores.block(at, 0, batch.size, 1) = model->output(0);
    scores.block(at, 1, batch.size, 1) = model->output(1);
    at += batch.size;
  }
  return scores;
}

double AucOf(const std::vector<float>& scores, const std::vector<float>& labels,
             const std::vector<float>* only_where = nullptr) {
  std::vector<ScoredLabel> scored;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (only_where == nullptr || (*only_where)[i] == 1.0f) scored.push_back({scores[i], labels[i]});
  }
  return Auc(std::move(scored)).value_or(0.0);
}

struct PlantedAucs {
  double ctr, cvr_given_click, ctcvr, cvr_head_alone;
};

PlantedAucs Evaluate(const nn::Matrix& scores, const PlantedStream& stream) {
  std::vector<float> ctr, cvr, ctcvr;
  for (Eigen::Index i = 0; i < scores.rows(); ++i) {
    ctr.push_back(scores(i, 0));
    cvr.push_back(scores(i, 1));
    ctcvr.push_back(static_cast<float>(nn::ProductLogit(scores(i, 0), scores(i, 1))));
  }
  return {AucOf(ctr, stream.eval_click), AucOf(cvr, stream.eval_buy, &stream.eval_click),
          AucOf(ctcvr, stream.eval_buy), AucOf(cvr, stream.eval_buy)};
}

TEST(EsmmModelTest, BeatsAPurchaseHeadTrainedOnClicksOnlyUnderSelectionBias) {
  proto::DatasetConfig dataset;
  ASSERT_TRUE(ParseTextProto(kPlantedDataset, "dataset", &dataset).ok());
  constexpr char kTasks[] = R"(
tasks { name: "click" head: BINARY label_column: "click" hidden_sizes: [16] }
tasks { name: "buy" head: BINARY label_column: "buy" hidden_sizes: [16] })";
  proto::ModelConfig esmm_config, baseline_config;
  ASSERT_TRUE(ParseTextProto(std::string(R"(
embedding_dim: 8
esmm { fields: ["user_id", "item_id"] ctr_task: "click" cvr_task: "buy" }
)") + kTasks,
                             "esmm", &esmm_config)
                  .ok());
  // The baseline: shared bottom, its buy head trained on the clicked impressions only (the
  // buy cell is empty elsewhere), pCTCVR = pCTR * pCVR of its two heads.
  ASSERT_TRUE(ParseTextProto(std::string(R"(
embedding_dim: 8
shared_bottom { fields: ["user_id", "item_id"] bottom_mlp: [32] }
)") + kTasks,
                             "baseline", &baseline_config)
                  .ok());
  const PlantedStream stream = MakePlantedStream(7);
  absl::StatusOr<std::unique_ptr<Model>> esmm = CreateModel(esmm_config, dataset);
  absl::StatusOr<std::unique_ptr<Model>> baseline = CreateModel(baseline_config, dataset);
  ASSERT_TRUE(esmm.ok()) << esmm.status();
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const PlantedAucs e = Evaluate(TrainAndScore(esmm->get(), stream), stream);
  const PlantedAucs s = Evaluate(TrainAndScore(baseline->get(), stream), stream);
  // The paper's BASE: the ESMM network with its CVR tower trained on the clicked impressions
  // only and pCTCVR left untrained.
  proto::ModelConfig base_config = esmm_config;
  base_config.mutable_tasks(1)->set_loss_weight(1);
  base_config.mutable_esmm()->set_ctcvr_loss_weight(0);
  absl::StatusOr<std::unique_ptr<Model>> base = CreateModel(base_config, dataset);
  ASSERT_TRUE(base.ok()) << base.status();
  const PlantedAucs b = Evaluate(TrainAndScore(base->get(), stream), stream);
  const double bayes = AucOf(stream.eval_ctcvr_probability, stream.eval_buy);
  // The figures of docs/models.md.
  std::printf("CTCVR AUC of the true probabilities: %.4f\n", bayes);
  std::printf("esmm:     CTR AUC %.4f, CVR AUC given click %.4f, CTCVR AUC %.4f\n", e.ctr,
              e.cvr_given_click, e.ctcvr);
  std::printf(
      "baseline: CTR AUC %.4f, CVR AUC given click %.4f, CTCVR AUC %.4f (pCTR * pCVR), "
      "%.4f (pCVR alone)\n",
      s.ctr, s.cvr_given_click, s.ctcvr, s.cvr_head_alone);
  std::printf("esmm as BASE: CTR AUC %.4f, CVR AUC given click %.4f, CTCVR AUC %.4f\n", b.ctr,
              b.cvr_given_click, b.ctcvr);
  // Fixed seeds make the run deterministic; the margins leave room for another platform's
  // float rounding (over three stream seeds ESMM led the product by 0.009 to 0.011).
  EXPECT_GT(e.ctcvr, s.ctcvr + 0.004);
  EXPECT_GT(e.ctcvr, s.cvr_head_alone + 0.05);
  EXPECT_GT(e.ctr, s.ctr - 0.01);
  EXPECT_LT(e.ctcvr, bayes);
  EXPECT_GT(e.ctcvr, 0.72);  // it learned: an untrained model ranks at about 0.5
}

}  // namespace
}  // namespace granary
