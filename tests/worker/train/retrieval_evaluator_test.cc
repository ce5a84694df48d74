#include "worker/train/retrieval_evaluator.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/vector_file.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

using nn::Matrix;

// A retrieval model whose vectors the test sets directly; only what the evaluator reads.
class FakeRetrievalModel : public RetrievalModel {
 public:
  FakeRetrievalModel() : RetrievalModel(Config(), proto::RetrievalConfig()) {}

  std::unique_ptr<ModelInput> NewInput() const override {
    return std::make_unique<RetrievalInput>();
  }
  absl::Status Prepare(const Batch&, ModelInput*) const override { return absl::OkStatus(); }
  void Forward(const ModelInput&, nn::ConstMatrixRef) override {}
  const Matrix& output(int) const override { return logits; }
  void Backward(const ModelInput&, std::vector<nn::LossValue>*, Matrix*) override {}
  const Matrix& user_vectors() const override { return users; }
  const Matrix& item_vectors() const override { return items; }
  const Matrix* cold_item_vectors() const override { return has_cold ? &cold_items : nullptr; }
  bool NewItemPopularity(const Matrix& vectors, absl::Span<float> scores) const override {
    for (Eigen::Index i = 0; i < vectors.rows(); ++i) scores[i] = vectors(i, 0);
    return has_cold;
  }

  const Matrix* interest_vectors() const override { return has_interests ? &interests : nullptr; }
  absl::Span<const int32_t> interest_counts() const override { return counts; }

  Matrix users, items, cold_items, logits;
  bool has_cold = false;
  Matrix interests;             // [B, K * 2] when has_interests
  std::vector<int32_t> counts;  // [B]
  bool has_interests = false;

 private:
  // Vectors of 2 and no tasks: all the evaluator reads of the config.
  static proto::ModelConfig Config() {
    proto::ModelConfig config;
    config.set_embedding_dim(2);
    return config;
  }
};

// A batch of samples (user, item, label); every label present.
RetrievalInput Batch3(const std::vector<uint64_t>& users, const std::vector<uint64_t>& items,
                      const std::vector<float>& labels) {
  RetrievalInput input;
  input.batch_size = static_cast<int>(users.size());
  input.user_ids = users;
  input.item_ids = items;
  input.has_user_id.assign(users.size(), 1);
  input.has_item_id.assign(items.size(), 1);
  input.labels = {labels};
  input.has_label = {std::vector<uint8_t>(labels.size(), 1)};
  for (float label : labels) input.positive.push_back(label >= kPositiveLabel);
  return input;
}

Matrix Rows(std::initializer_list<std::initializer_list<float>> rows) {
  Matrix m(static_cast<Eigen::Index>(rows.size()), 2);
  Eigen::Index r = 0;
  for (const auto& row : rows) {
    Eigen::Index c = 0;
    for (float value : row) m(r, c++) = value;
    ++r;
  }
  return m;
}

TEST(RetrievalEvaluatorTest, RanksQueriesAgainstWarmAndColdItems) {
  FakeRetrievalModel model;
  RetrievalEvaluator evaluator;
  // Training: items 10 and 11; item 10's last training vector is (1, 0).
  model.items = Rows({{0, 1}, {0, 1}, {1, 0}});
  model.users = Rows({{1, 0}, {1, 0}, {1, 0}});
  model.logits = Rows({{0, 0}, {0, 0}, {0, 0}}).leftCols(1);
  evaluator.AddTrainBatch(Batch3({1, 1, 2}, {10, 11, 10}, {1, 1, 1}), model);
  // Evaluation: item 12 is new; the model scores it with its cold vector (0.5, 0.5), kept from
  // its first eval sample. User 1 likes 10 (rank 1) and 12 (rank 2: 0.5 < 1); user 2
  // dislikes 11.
  model.has_cold = true;
  model.items = Rows({{1, 0}, {9, 9}, {9, 9}, {0, 1}});
  model.cold_items = Rows({{0, 0}, {0.5f, 0.5f}, {0, 0}, {0, 0}});
  model.users = Rows({{1, 0}, {1, 0}, {1, 0}, {0, 1}});
  model.logits = Rows({{3, 0}, {0, 0}, {0, 0}, {-2, 0}}).leftCols(1);
  evaluator.AddEvalBatch(Batch3({1, 1, 1, 2}, {10, 12, 12, 11}, {1, 1, 0, 0}), model);
  const std::vector<int> ks = {1, 2};
  const RetrievalEvaluation evaluation = evaluator.Evaluate(ks, model);
  EXPECT_EQ(evaluation.corpus_items, 3);
  EXPECT_EQ(evaluation.cold_items, 1);
  EXPECT_EQ(evaluation.overall.queries, 2);
  EXPECT_DOUBLE_EQ(evaluation.overall.hit_rates[0], 0.5);
  EXPECT_DOUBLE_EQ(evaluation.overall.hit_rates[1], 1.0);
  EXPECT_DOUBLE_EQ(evaluation.overall.mrr, (1.0 + 0.5) / 2);
  EXPECT_EQ(evaluation.cold.queries, 1);
  EXPECT_DOUBLE_EQ(evaluation.cold.mrr, 0.5);
  // Warm: item 10 (score 3, liked) and item 11 (score -2, disliked); cold: item 12 scored
  // <user, cold vector of the sample>: 0.5 when liked, 0 when disliked (the logits, 0 for both,
  // are not used for cold items).
  EXPECT_EQ(evaluation.warm_samples, 2);
  EXPECT_EQ(evaluation.cold_samples, 2);
  EXPECT_DOUBLE_EQ(*evaluation.warm_auc, 1.0);
  EXPECT_DOUBLE_EQ(*evaluation.cold_auc, 1.0);
  // One cold item: no rank correlation.
  EXPECT_FALSE(evaluation.new_item_popularity_spearman.has_value());
}

// Two queries for item 11 against items 10 (0.9, 0), 11 (0, 1) and 12 (0.5, 0.5). Both users
// have the interests (1, 0) and (0, 1), but user 2 uses only the first (count 1).
RetrievalEvaluation EvaluateTwoInterestQueries(bool has_interests) {
  FakeRetrievalModel model;
  RetrievalEvaluator evaluator;
  model.items = Rows({{0.9f, 0}, {0, 1}, {0.5f, 0.5f}});
  model.users = Rows({{1, 0}, {1, 0}, {1, 0}});
  model.logits = Rows({{0, 0}, {0, 0}, {0, 0}}).leftCols(1);
  evaluator.AddTrainBatch(Batch3({1, 1, 2}, {10, 11, 12}, {1, 1, 1}), model);
  model.items = Rows({{0, 1}, {0, 1}});
  model.users = Rows({{1, 0}, {1, 0}});
  model.logits = Rows({{0, 0}, {0, 0}}).leftCols(1);
  model.has_interests = has_interests;
  model.interests.resize(2, 4);
  model.interests << 1, 0, 0, 1, 1, 0, 0, 1;
  model.counts = {2, 1};
  evaluator.AddEvalBatch(Batch3({1, 2}, {11, 11}, {1, 1}), model);
  const std::vector<int> ks = {1, 2};
  return evaluator.Evaluate(ks, model);
}

TEST(RetrievalEvaluatorTest, SeveralUserVectorsScoreAnItemByTheBest) {
  const RetrievalEvaluation evaluation = EvaluateTwoInterestQueries(true);
  // User 1's second interest finds item 11 first (1 > 0.9); user 2 has only the first: 0 is
  // below 0.9 and 0.5, rank 3.
  EXPECT_EQ(evaluation.overall.queries, 2);
  EXPECT_DOUBLE_EQ(evaluation.overall.hit_rates[0], 0.5);
  EXPECT_DOUBLE_EQ(evaluation.overall.hit_rates[1], 0.5);
  EXPECT_DOUBLE_EQ(evaluation.overall.mrr, (1.0 + 1.0 / 3) / 2);
}

TEST(RetrievalEvaluatorTest, OneUserVectorModelsRankByUserVectors) {
  // The two-tower path: no interest vectors, each query is its user vector (1, 0), as before.
  const RetrievalEvaluation evaluation = EvaluateTwoInterestQueries(false);
  EXPECT_EQ(evaluation.overall.queries, 2);
  EXPECT_DOUBLE_EQ(evaluation.overall.hit_rates[0], 0.0);
  EXPECT_DOUBLE_EQ(evaluation.overall.hit_rates[1], 0.0);
  EXPECT_DOUBLE_EQ(evaluation.overall.mrr, 1.0 / 3);
}

class RetrievalEvaluatorExportTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const {
    return absl::StrCat(::testing::TempDir(), "/retrieval_evaluator_test-", getpid(), "-", name);
  }
  void TearDown() override {
    std::filesystem::remove(Path("users.vec"));
    std::filesystem::remove(Path("items.vec"));
  }
};

TEST_F(RetrievalEvaluatorExportTest, ExportsTheCorpusAndTheEvalUsers) {
  FakeRetrievalModel model;
  RetrievalEvaluator evaluator;
  EXPECT_TRUE(absl::IsFailedPrecondition(
      evaluator.ExportVectors(Path("users.vec"), Path("items.vec"), "test")));
  model.items = Rows({{1, 2}, {3, 4}});
  model.users = Rows({{5, 6}, {7, 8}});
  model.logits = Rows({{0, 0}, {0, 0}}).leftCols(1);
  evaluator.AddEvalBatch(Batch3({1, 1}, {10, 11}, {1, 0}), model);
  ASSERT_TRUE(evaluator.ExportVectors(Path("users.vec"), Path("items.vec"), "test").ok());
  absl::StatusOr<VectorSet> users = ReadVectorFile(Path("users.vec"));
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(users->keys, std::vector<uint64_t>{1});
  EXPECT_EQ(users->values, (std::vector<float>{7, 8}));  // the user's last sample
  absl::StatusOr<VectorSet> items = ReadVectorFile(Path("items.vec"));
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_EQ(items->keys, (std::vector<uint64_t>{10, 11}));
  EXPECT_EQ(items->header.source(), "test");

  absl::Status status =
      evaluator.ExportVectors("/nonexistent-dir/users.vec", Path("items.vec"), "test");
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("/nonexistent-dir/users.vec"), std::string::npos) << status;
}

}  // namespace
}  // namespace granary
