#include "worker/serve/scorer.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/delta_file.h"
#include "common/feature_key.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/worker/serve/one_day_model.h"
#include "worker/batch_parser.h"
#include "worker/models/model_factory.h"
#include "worker/nn/loss.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 4;
constexpr char kJob[] = R"(
dataset {
  columns { name: "click" role: LABEL }
  columns { name: "user" role: CATEGORICAL }
  columns { name: "item" role: CATEGORICAL }
}
model {
  embedding_dim: 4
  sparse_table: "emb"
  dense_table: "dense"
  shared_bottom { fields: ["user", "item"] bottom_mlp: [8] }
  tasks { name: "click" head: BINARY label_column: "click" loss_weight: 1 hidden_sizes: [4] }
}
training { batch_size: 16 epochs: 1 seed: 3 train_files: "part-*" }
)";
const std::vector<float> kUserRow = {0.5f, -0.25f, 1.0f, 0.75f};

// A served model of one day whose base holds only user "1"'s row: no dense offsets, no items.
class ScorerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("scorer");
    ASSERT_FALSE(root_.empty());
    std::ofstream(root_ + "/job.pbtxt") << kJob;
    absl::StatusOr<JobSpec> spec = LoadJobConfig(root_ + "/job.pbtxt");
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_ = *spec;
    absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = OpenOneDayModel(root_, &WriteUserRow);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = *std::move(bundle);
  }
  void TearDown() override { fs::remove_all(root_); }

  static absl::Status WriteUserRow(const std::string& path) {
    absl::StatusOr<std::unique_ptr<DeltaWriter>> writer = DeltaWriter::Create(path, {});
    if (!writer.ok()) return writer.status();
    absl::Status added =
        (*writer)->AddRow("emb", kDim, FeatureKey(FieldSeed("user"), "1"), kUserRow.data());
    return added.ok() ? (*writer)->Finish() : added;
  }

  std::string root_;
  JobSpec spec_;
  std::unique_ptr<ModelBundle> bundle_;
};

TEST_F(ScorerTest, ScoresWithTheSeedsWeightsTheServedRowsAndZerosForKeysWithoutARow) {
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = Scorer::Create(spec_);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const std::string header = "click\tuser\titem";
  const std::vector<std::string> lines = {"\t1\t50", "\t1\t", "\t2\t50"};
  absl::StatusOr<proto::ScoreResponse> response =
      (*scorer)->Score(header, lines, *bundle_->Current());
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->tasks_size(), 1);
  ASSERT_EQ(response->tasks(0).scores_size(), 3);

  // The same lines through the trainer's pieces: w0 of the job's seed, user "1"'s row, and
  // zero rows for user "2" and item "50", which the served model does not hold.
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(spec_.job.model(), spec_.dataset);
  ASSERT_TRUE(model.ok());
  (*model)->params().Initialize(spec_.job.training().seed());
  BatchParser parser(spec_.dataset, 3);
  absl::StatusOr<BatchParser::Layout> layout = parser.MatchHeader(header, "test");
  ASSERT_TRUE(layout.ok());
  Batch batch = parser.NewBatch();
  std::string reason;
  for (const std::string& line : lines)
    ASSERT_TRUE(parser.ParseLine(line, &*layout, &batch, &reason));
  std::unique_ptr<ModelInput> input = (*model)->NewInput();
  ASSERT_TRUE((*model)->Prepare(batch, input.get()).ok());
  nn::Matrix rows = nn::Matrix::Zero(static_cast<Eigen::Index>(input->keys.size()), kDim);
  for (size_t i = 0; i < input->keys.size(); ++i) {
    if (input->keys[i] == FeatureKey(FieldSeed("user"), "1")) {
      for (int d = 0; d < kDim; ++d) rows(static_cast<Eigen::Index>(i), d) = kUserRow[d];
    }
  }
  (*model)->Forward(*input, rows);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(response->tasks(0).scores(c), nn::Sigmoid((*model)->output(0)(c, 0)), 1e-7)
        << "candidate " << c;
  }
  // The served row matters: user "1" and user "2" score differently on the same item.
  EXPECT_NE(response->tasks(0).scores(0), response->tasks(0).scores(2));

  // A line the trainer's parser refuses is refused, naming the candidate.
  response = (*scorer)->Score(header, {"\t1\t50", "\t1"}, *bundle_->Current());
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(response.status()));
  EXPECT_EQ(response.status().message().substr(0, 12), "candidate 1:") << response.status();
}

}  // namespace
}  // namespace granary
