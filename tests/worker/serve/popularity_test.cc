#include "worker/serve/popularity.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/delta_file.h"
#include "common/feature_key.h"
#include "common/model_bundle.h"
#include "common/vector_file.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/worker/serve/one_day_model.h"
#include "worker/batch_parser.h"
#include "worker/models/atnn_model.h"
#include "worker/models/model_factory.h"
#include "worker/serve/score_request.h"
#include "worker/serve/scorer.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 4;
constexpr float kTolerance = 1e-5f;
constexpr char kDataset[] = R"(
dataset {
  columns { name: "click" role: LABEL }
  columns { name: "user_id" role: CATEGORICAL }
  columns { name: "item_id" role: CATEGORICAL }
  columns { name: "category" role: CATEGORICAL }
  columns { name: "item_ctr" role: NUMERIC }
}
)";
constexpr char kAtnnModel[] = R"(
model {
  embedding_dim: 4
  sparse_table: "emb"
  dense_table: "dense"
  atnn {
    retrieval { user_id_column: "user_id" item_id_column: "item_id" temperature: 0.1 }
    user_tower { fields: ["user_id"] mlp: [8, 4] }
    item_tower { fields: ["item_id", "category"] mlp: [8, 4] }
    statistics_columns: ["item_ctr"]
    similarity_weight: 1
  }
  tasks { name: "click" head: BINARY label_column: "click" }
}
training { batch_size: 16 epochs: 1 seed: 5 train_files: "part-*" }
)";
constexpr char kSharedBottomModel[] = R"(
model {
  embedding_dim: 4
  sparse_table: "emb"
  dense_table: "dense"
  shared_bottom { fields: ["user_id", "item_id"] bottom_mlp: [8] }
  tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 hidden_sizes: [4] }
}
training { batch_size: 16 epochs: 1 seed: 5 train_files: "part-*" }
)";
constexpr char kItems[] =
    R"({"candidates": [{"item_id": "7", "category": "c1"}, {"item_id": "9", "category": "c2"}]})";

absl::Status WriteVectors(const std::string& path, int dim,
                          const std::vector<std::vector<float>>& vectors) {
  proto::VectorFileHeader header;
  header.set_dim(dim);
  header.set_kind(proto::VectorFileHeader::USER);
  absl::StatusOr<std::unique_ptr<VectorFileWriter>> writer = VectorFileWriter::Create(path, header);
  if (!writer.ok()) return writer.status();
  for (size_t i = 0; i < vectors.size(); ++i) {
    absl::Status added = (*writer)->Add(i, vectors[i]);
    if (!added.ok()) return added;
  }
  return (*writer)->Finish();
}

// The served rows: the items' ids and categories; the dense parameters are the seed's.
std::vector<std::pair<uint64_t, std::vector<float>>> ItemRows() {
  return {{FeatureKey(FieldSeed("item_id"), "7"), {0.5f, -0.25f, 1.0f, 0.75f}},
          {FeatureKey(FieldSeed("item_id"), "9"), {-1.0f, 0.5f, 0.25f, 2.0f}},
          {FeatureKey(FieldSeed("category"), "c1"), {0.3f, 0.1f, -0.6f, 0.2f}},
          {FeatureKey(FieldSeed("category"), "c2"), {-0.4f, 0.9f, 0.1f, -0.3f}}};
}

// A served model of one day whose base holds ItemRows() and no dense offsets.
class PopularityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("popularity");
    ASSERT_FALSE(root_.empty());
    absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = OpenOneDayModel(root_, &WriteItemRows);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = *std::move(bundle);
  }
  void TearDown() override { fs::remove_all(root_); }

  static absl::Status WriteItemRows(const std::string& path) {
    absl::StatusOr<std::unique_ptr<DeltaWriter>> writer = DeltaWriter::Create(path, {});
    if (!writer.ok()) return writer.status();
    for (const auto& [key, row] : ItemRows()) {
      absl::Status added = (*writer)->AddRow("emb", kDim, key, row.data());
      if (!added.ok()) return added;
    }
    return (*writer)->Finish();
  }
  JobSpec LoadJob(const std::string& model) {
    std::ofstream(root_ + "/job.pbtxt") << kDataset << model;
    absl::StatusOr<JobSpec> spec = LoadJobConfig(root_ + "/job.pbtxt");
    EXPECT_TRUE(spec.ok()) << spec.status();
    return spec.ok() ? *spec : JobSpec();
  }

  std::string root_;
  std::unique_ptr<ModelBundle> bundle_;
};

TEST_F(PopularityTest, MeanVectorOfAveragesTheFileAndPopularityIsTheDotWithIt) {
  const std::string path = root_ + "/user_vectors.vec";
  ASSERT_TRUE(WriteVectors(path, 2, {{1, 2}, {3, -4}, {2, 5}}).ok());
  absl::StatusOr<std::vector<float>> mean = MeanVectorOf(path);
  ASSERT_TRUE(mean.ok()) << mean.status();
  EXPECT_EQ(*mean, std::vector<float>({2, 1}));

  UserVectors items;
  items.dim = 2;
  items.count = 2;
  items.values = {0.5f, 1.0f, -1.0f, 3.0f};
  NewItemPopularity popularity;
  absl::StatusOr<std::vector<float>> scores = popularity.Of(path, items);
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_EQ(*scores, std::vector<float>({2.0f, 1.0f}));  // <(2,1), item>

  items.dim = 3;
  items.count = 1;
  items.values = {1, 2, 3};
  scores = popularity.Of(path, items);
  EXPECT_TRUE(absl::IsFailedPrecondition(scores.status()));
  EXPECT_NE(scores.status().message().find(path), std::string::npos) << scores.status();
  EXPECT_FALSE(MeanVectorOf(root_ + "/missing.vec").ok());
}

TEST_F(PopularityTest, ServedNewItemVectorsAreTheGeneratorsAndScoreAsTheTrainersPopularity) {
  const JobSpec spec = LoadJob(kAtnnModel);
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = Scorer::Create(spec);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const ScoreRequestParser parser(spec.dataset, kDefaultMaxCandidates);
  absl::StatusOr<std::vector<std::string>> lines = parser.Parse(kItems);
  ASSERT_TRUE(lines.ok()) << lines.status();
  absl::StatusOr<UserVectors> served =
      (*scorer)->NewItemVectorsOf(parser.header(), *lines, *bundle_->Current());
  ASSERT_TRUE(served.ok()) << served.status();
  ASSERT_EQ(served->count, 2);
  ASSERT_EQ(served->dim, kDim);

  // The trainer's model on the same lines: the seed's parameters, the same rows.
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(spec.job.model(), spec.dataset);
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->params().Initialize(spec.job.training().seed());
  BatchParser batch_parser(spec.dataset, 1);
  absl::StatusOr<BatchParser::Layout> layout = batch_parser.MatchHeader(parser.header(), "test");
  ASSERT_TRUE(layout.ok()) << layout.status();
  Batch batch = batch_parser.NewBatch();
  std::string reason;
  for (const std::string& line : *lines) {
    ASSERT_TRUE(batch_parser.ParseLine(line, &*layout, &batch, &reason)) << reason;
  }
  std::unique_ptr<ModelInput> input = (*model)->NewInput();
  ASSERT_TRUE((*model)->Prepare(batch, input.get()).ok());
  nn::Matrix rows = nn::Matrix::Zero(static_cast<Eigen::Index>(input->keys.size()), kDim);
  for (size_t i = 0; i < input->keys.size(); ++i) {
    for (const auto& [key, row] : ItemRows()) {
      if (key == input->keys[i]) {
        rows.row(static_cast<Eigen::Index>(i)) = nn::ConstMatrixMap(row.data(), 1, kDim);
      }
    }
  }
  (*model)->Forward(*input, rows);
  const auto& atnn = dynamic_cast<const AtnnModel&>(**model);
  const nn::Matrix& generated = atnn.generator_vectors();
  ASSERT_GT(generated.norm(), 0.0f);
  for (int i = 0; i < served->count; ++i) {
    for (int j = 0; j < kDim; ++j) {
      EXPECT_NEAR(served->values[i * kDim + j], generated(i, j), kTolerance) << i << "," << j;
    }
  }

  // Served popularity = the trainer's PopularityScores with the same mean user vector.
  const std::string path = root_ + "/user_vectors.vec";
  const std::vector<std::vector<float>> users = {{1, 0, -1, 2}, {0.5f, 3, 1, -1}};
  ASSERT_TRUE(WriteVectors(path, kDim, users).ok());
  nn::Matrix mean(1, kDim);
  for (int j = 0; j < kDim; ++j) mean(0, j) = (users[0][j] + users[1][j]) / 2;
  std::vector<float> expected(2);
  PopularityScores(mean, generated, absl::MakeSpan(expected));
  NewItemPopularity popularity;
  absl::StatusOr<std::vector<float>> scores = popularity.Of(path, *served);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ASSERT_EQ(scores->size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_NEAR((*scores)[i], expected[i], kTolerance) << i;
  EXPECT_NE((*scores)[0], (*scores)[1]);
}

TEST_F(PopularityTest, AModelOtherThanAtnnIsRefusedNamingIt) {
  const JobSpec spec = LoadJob(kSharedBottomModel);
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = Scorer::Create(spec);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const ScoreRequestParser parser(spec.dataset, kDefaultMaxCandidates);
  absl::StatusOr<std::vector<std::string>> lines =
      parser.Parse(R"({"candidates": [{"item_id": "7"}]})");
  ASSERT_TRUE(lines.ok()) << lines.status();
  absl::StatusOr<UserVectors> served =
      (*scorer)->NewItemVectorsOf(parser.header(), *lines, *bundle_->Current());
  EXPECT_TRUE(absl::IsUnimplemented(served.status())) << served.status();
  EXPECT_NE(served.status().message().find("shared_bottom"), std::string::npos) << served.status();
  EXPECT_NE(served.status().message().find("atnn"), std::string::npos) << served.status();
}

TEST_F(PopularityTest, AnUnknownItemColumnIsRefusedByTheRequestParser) {
  const JobSpec spec = LoadJob(kAtnnModel);
  const ScoreRequestParser parser(spec.dataset, kDefaultMaxCandidates);
  absl::StatusOr<std::vector<std::string>> lines =
      parser.Parse(R"({"candidates": [{"item": "7"}]})");
  EXPECT_TRUE(absl::IsInvalidArgument(lines.status()));
  EXPECT_NE(lines.status().message().find("'item'"), std::string::npos) << lines.status();
}

}  // namespace
}  // namespace granary
