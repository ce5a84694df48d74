// End to end: DAT and ATNN where their claims can show. tests/bench/synthetic_retrieval.py
// writes a stream from a planted model with one major item category and several minor ones,
// and new items (first seen in eval.tsv) of planted popularity; the committed jobs
// configs/synthetic_retrieval_{two_tower,dat,atnn}.pbtxt train on it (in-process cluster, real
// TCP) and are scored against the planted truth:
//   - retrieval (HitRate@K over the whole corpus) overall, on the major category and on the
//     minor ones pooled, beside the popularity baseline (items ranked by train positives) and
//     random (K / corpus);
//   - new-item popularity: Spearman's rho between each model's predicted popularity of the new
//     items, <mean user vector, item vector> over the exported vectors (ATNN's definition), and
//     the planted popularity, beside the count baseline (the train click rate of the item's
//     category and tier) and ATNN whose item towers read the item id only (no side features).
// Each seed prints one "synthetic_retrieval" line per model: the figures of docs/models.md.
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/feature_key.h"
#include "common/vector_file.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/in_process_training.h"
#include "tests/testing/temp_dir.h"
#include "worker/job_config.h"
#include "worker/train/retrieval_metrics.h"
#include "worker/train/spearman.h"

namespace granary {
namespace {

constexpr absl::Duration kGeneratorTimeout = absl::Seconds(60);
constexpr char kMajorCategory[] = "c0";
// Cut-offs of the per-category hit rates (the corpus has the generator's 240 items).
const std::vector<int> kCutoffs = {10, 50};
// Bars that held with margin over seeds 1..3 (docs/models.md has the figures):
// ATNN ranks new items by popularity, overall (0.73-0.87) and inside the major category where
// only the tier separates them (0.74-0.80); without side features it cannot (-0.08-0.07).
constexpr double kMinAtnnPopularityRho = 0.6;
constexpr double kMinAtnnMajorPopularityRho = 0.5;
constexpr double kMinAtnnRhoGainOverItemIdOnly = 0.4;
// two_tower and dat retrieve above the popularity baseline (HR@50 0.33-0.43 against 0.23).
constexpr double kMinHitRate50GainOverPopularity = 0.05;
// DAT's claim did not show here: on the minor categories its HR@50 is two_tower's within
// +-0.03. What holds is that DAT does not cost the minor categories.
constexpr double kMaxDatMinorHitRate50Loss = 0.05;

struct ItemTruth {
  std::string category;
  bool is_new = false;
  double planted_popularity = 0;
  double train_positives = 0;
  double group_ctr_baseline = 0;
  double eval_positives = 0;
};

// truth.json's items by item id.
absl::flat_hash_map<std::string, ItemTruth> ReadTruth(const std::string& path) {
  google::protobuf::Struct truth;
  const auto parsed = google::protobuf::util::JsonStringToMessage(ReadFile(path), &truth);
  EXPECT_TRUE(parsed.ok()) << path << ": " << parsed.ToString();
  absl::flat_hash_map<std::string, ItemTruth> items;
  if (!parsed.ok() || !truth.fields().contains("items")) return items;
  for (const google::protobuf::Value& value : truth.fields().at("items").list_value().values()) {
    const auto& fields = value.struct_value().fields();
    ItemTruth& item = items[fields.at("item_id").string_value()];
    item.category = fields.at("category").string_value();
    item.is_new = fields.at("new").bool_value();
    item.planted_popularity = fields.at("planted_popularity").number_value();
    item.train_positives = fields.at("train_positives").number_value();
    item.group_ctr_baseline = fields.at("group_ctr_baseline").number_value();
    item.eval_positives = fields.at("eval_positives").number_value();
  }
  return items;
}

// The positive (user, item) pairs of eval.tsv: the retrieval queries.
std::vector<std::pair<std::string, std::string>> ReadEvalPositives(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> positives;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty())) {
    if (header) {
      header = false;
      continue;
    }
    const std::vector<absl::string_view> cells = absl::StrSplit(line, '\t');
    if (cells[0] == "1") positives.emplace_back(std::string(cells[1]), std::string(cells[2]));
  }
  return positives;
}

// Hit rates of `ranks` on the queries whose target is in the major category, and on the rest.
struct CategoryHitRates {
  RetrievalMetrics major;
  RetrievalMetrics minor;
};

CategoryHitRates SplitByCategory(const std::vector<int32_t>& ranks,
                                 const std::vector<bool>& query_is_major) {
  std::vector<int32_t> major, minor;
  for (size_t q = 0; q < ranks.size(); ++q) (query_is_major[q] ? major : minor).push_back(ranks[q]);
  return {RetrievalMetricsOf(major, kCutoffs), RetrievalMetricsOf(minor, kCutoffs)};
}

struct ModelFigures {
  RetrievalEvaluation evaluation;  // the trainer's own
  RetrievalMetrics overall;        // recomputed from the exported vectors
  CategoryHitRates by_category;
  std::optional<double> popularity_spearman;  // against the planted popularity of new items
  // The same over the major category's new items only, where category cannot tell them apart
  // and only the tier (and what the model made of it) can.
  std::optional<double> major_popularity_spearman;
};

// Predicted and planted popularity of the new items, all and of the major category alone.
struct NewItemScores {
  void Add(const ItemTruth& item, double score) {
    if (!item.is_new) return;
    predicted.push_back(score);
    planted.push_back(item.planted_popularity);
    if (item.category != kMajorCategory) return;
    major_predicted.push_back(score);
    major_planted.push_back(item.planted_popularity);
  }
  std::vector<double> predicted, planted, major_predicted, major_planted;
};

struct SyntheticSet {
  std::string dir;
  absl::flat_hash_map<std::string, ItemTruth> truth;
  std::vector<std::pair<std::string, std::string>> queries;
  std::vector<bool> query_is_major;
};

// Scores the vectors a run exported into `out` against the set's truth.
void ScoreExportedVectors(const SyntheticSet& set, const std::string& out, ModelFigures* figures) {
  absl::StatusOr<VectorSet> items = ReadVectorFile(out + "/item_vectors.vec");
  ASSERT_TRUE(items.ok()) << items.status();
  absl::StatusOr<VectorSet> users = ReadVectorFile(out + "/user_vectors.vec");
  ASSERT_TRUE(users.ok()) << users.status();
  const int dim = static_cast<int>(items->header.dim());
  const nn::Matrix item_matrix =
      nn::ConstMatrixMap(items->values.data(), static_cast<Eigen::Index>(items->keys.size()), dim);
  const nn::Matrix user_matrix =
      nn::ConstMatrixMap(users->values.data(), static_cast<Eigen::Index>(users->keys.size()), dim);
  absl::flat_hash_map<uint64_t, int32_t> item_row, user_row;
  for (size_t i = 0; i < items->keys.size(); ++i) item_row[items->keys[i]] = i;
  for (size_t i = 0; i < users->keys.size(); ++i) user_row[users->keys[i]] = i;

  const Eigen::Index count = static_cast<Eigen::Index>(set.queries.size());
  nn::Matrix query_users(count, dim);
  std::vector<int32_t> targets(count), ranks(count);
  for (Eigen::Index q = 0; q < count; ++q) {
    query_users.row(q) = user_matrix.row(user_row.at(FeatureKey("user_id", set.queries[q].first)));
    targets[q] = item_row.at(FeatureKey("item_id", set.queries[q].second));
  }
  RankTargets(query_users, item_matrix, targets, absl::MakeSpan(ranks));
  figures->overall = RetrievalMetricsOf(ranks, kCutoffs);
  figures->by_category = SplitByCategory(ranks, set.query_is_major);

  const Eigen::RowVectorXf mean_user = user_matrix.colwise().mean();
  NewItemScores scores;
  for (const auto& [id, item] : set.truth) {
    scores.Add(item, mean_user.dot(item_matrix.row(item_row.at(FeatureKey("item_id", id)))));
  }
  figures->popularity_spearman = Spearman(scores.predicted, scores.planted);
  figures->major_popularity_spearman = Spearman(scores.major_predicted, scores.major_planted);
}

// One job of configs/, optionally changed: the item towers' fields, DAT's loss weights.
struct ModelRun {
  std::string name;
  std::string job_config;                     // under configs/
  std::vector<std::string> item_fields = {};  // empty: as configured
  std::optional<float> category_alignment_weight = std::nullopt;
  std::optional<float> amm_weight = std::nullopt;  // both AMM weights
};

// The item tower of the job's retrieval architecture (ATNN's is both its encoder's and its
// generator's).
proto::TowerConfig* ItemTower(proto::ModelConfig* model) {
  if (model->has_atnn()) return model->mutable_atnn()->mutable_item_tower();
  if (model->has_dat()) return model->mutable_dat()->mutable_towers()->mutable_item_tower();
  return model->mutable_two_tower()->mutable_item_tower();
}

ModelFigures TrainAndScore(const SyntheticSet& set, const ModelRun& run,
                           const proto::ClusterConfig& tables) {
  ModelFigures figures;
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/", run.job_config));
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return figures;
  proto::ModelConfig* model = spec->job.mutable_model();
  if (!run.item_fields.empty()) {
    ItemTower(model)->clear_fields();
    for (const std::string& field : run.item_fields) ItemTower(model)->add_fields(field);
  }
  if (run.category_alignment_weight.has_value()) {
    model->mutable_dat()->set_category_alignment_weight(*run.category_alignment_weight);
  }
  if (run.amm_weight.has_value()) {
    model->mutable_dat()->set_amm_user_weight(*run.amm_weight);
    model->mutable_dat()->set_amm_item_weight(*run.amm_weight);
  }
  const std::string out = "out-" + run.name;
  spec->job.mutable_training()->set_metrics_file(out + "/metrics.jsonl");
  absl::StatusOr<std::vector<std::vector<EpochReport>>> reports =
      TrainInProcessCluster(*spec, tables, set.dir);
  EXPECT_TRUE(reports.ok()) << reports.status();
  if (!reports.ok() || !(*reports)[0].back().retrieval.has_value()) {
    ADD_FAILURE() << run.name << ": no retrieval evaluation";
    return figures;
  }
  figures.evaluation = *(*reports)[0].back().retrieval;
  ScoreExportedVectors(set, set.dir + "/" + out, &figures);
  return figures;
}

std::string Format(std::optional<double> value) {
  return value.has_value() ? absl::StrFormat("%.3f", *value) : std::string("-");
}

void PrintFigures(int seed, const std::string& name, const RetrievalMetrics& overall,
                  const CategoryHitRates& by_category, std::optional<double> spearman,
                  std::optional<double> major_spearman) {
  std::printf(
      "synthetic_retrieval seed %d %-22s HR@10 %.3f HR@50 %.3f | major HR@10 %.3f HR@50 %.3f | "
      "minor HR@10 %.3f HR@50 %.3f (%lld queries) | new-item popularity rho %s, in %s %s\n",
      seed, name.c_str(), overall.hit_rates[0], overall.hit_rates[1],
      by_category.major.hit_rates[0], by_category.major.hit_rates[1],
      by_category.minor.hit_rates[0], by_category.minor.hit_rates[1],
      static_cast<long long>(by_category.minor.queries), Format(spearman).c_str(), kMajorCategory,
      Format(major_spearman).c_str());
}

// Writes the generator's set for `seed` into a new folder and reads its truth and queries.
void GenerateSet(int seed, SyntheticSet* set) {
  set->dir = MakeTempDir(absl::StrCat("synthetic_retrieval_test_", seed));
  absl::StatusOr<ChildProcess> generator = ChildProcess::Start(
      {"/usr/bin/python3", std::string(GRANARY_SOURCE_DIR) + "/tests/bench/synthetic_retrieval.py",
       "--output_dir=" + set->dir, absl::StrCat("--seed=", seed)},
      set->dir + "/generator.log");
  ASSERT_TRUE(generator.ok()) << generator.status();
  ASSERT_EQ(generator->WaitForExit(kGeneratorTimeout), 0) << generator->ReadLog();
  set->truth = ReadTruth(set->dir + "/truth.json");
  ASSERT_FALSE(set->truth.empty());
  set->queries = ReadEvalPositives(set->dir + "/eval.tsv");
  ASSERT_FALSE(set->queries.empty());
  for (const auto& [user, item] : set->queries) {
    set->query_is_major.push_back(set->truth.at(item).category == kMajorCategory);
  }
}

// Prints the baselines' figures and returns the popularity baseline's hit rates. Popularity:
// every item scored by its train positives (a one-column GEMM, ties against the target as for
// the models); count: a new item's popularity is the train click rate of its category and
// tier; random: K / corpus in expectation.
RetrievalMetrics ScoreBaselines(int seed, const SyntheticSet& set) {
  std::vector<std::string> corpus;
  for (const auto& [id, item] : set.truth) corpus.push_back(id);
  absl::flat_hash_map<std::string, int32_t> corpus_row;
  nn::Matrix popularity(static_cast<Eigen::Index>(corpus.size()), 1);
  for (size_t i = 0; i < corpus.size(); ++i) {
    corpus_row[corpus[i]] = i;
    popularity(i, 0) = set.truth.at(corpus[i]).train_positives;
  }
  const Eigen::Index count = static_cast<Eigen::Index>(set.queries.size());
  std::vector<int32_t> targets(count), ranks(count);
  for (Eigen::Index q = 0; q < count; ++q) targets[q] = corpus_row.at(set.queries[q].second);
  RankTargets(nn::Matrix::Ones(count, 1), popularity, targets, absl::MakeSpan(ranks));
  const RetrievalMetrics popularity_overall = RetrievalMetricsOf(ranks, kCutoffs);
  NewItemScores count_baseline;
  for (const auto& [id, item] : set.truth) count_baseline.Add(item, item.group_ctr_baseline);
  PrintFigures(seed, "popularity / count", popularity_overall,
               SplitByCategory(ranks, set.query_is_major),
               Spearman(count_baseline.predicted, count_baseline.planted),
               Spearman(count_baseline.major_predicted, count_baseline.major_planted));
  // The trainer's own rho compares with the new items' eval clicks, a noisy draw of the truth.
  NewItemScores observed;
  for (const auto& [id, item] : set.truth) observed.Add(item, item.eval_positives);
  std::printf("synthetic_retrieval seed %d %-22s new-item popularity rho %s, in %s %s\n", seed,
              "observed eval clicks",
              Format(Spearman(observed.predicted, observed.planted)).c_str(), kMajorCategory,
              Format(Spearman(observed.major_predicted, observed.major_planted)).c_str());
  std::printf("synthetic_retrieval seed %d %-22s HR@10 %.3f HR@50 %.3f\n", seed, "random",
              static_cast<double>(kCutoffs[0]) / corpus.size(),
              static_cast<double>(kCutoffs[1]) / corpus.size());
  return popularity_overall;
}

// Trains and scores each run on the set, printing its figures.
std::map<std::string, ModelFigures> TrainAndScoreAll(int seed, const SyntheticSet& set,
                                                     const std::vector<ModelRun>& runs) {
  std::map<std::string, ModelFigures> figures;
  absl::StatusOr<proto::ClusterConfig> tables = LoadClusterConfig(
      std::string(GRANARY_SOURCE_DIR) + "/configs/synthetic_retrieval_cluster.pbtxt");
  EXPECT_TRUE(tables.ok()) << tables.status();
  if (!tables.ok()) return figures;
  for (const ModelRun& run : runs) {
    const ModelFigures model = TrainAndScore(set, run, *tables);
    if (::testing::Test::HasFailure()) return figures;
    PrintFigures(seed, run.name, model.overall, model.by_category, model.popularity_spearman,
                 model.major_popularity_spearman);
    // The exported vectors give the trainer's own ranking back.
    EXPECT_EQ(model.overall.queries, model.evaluation.overall.queries) << run.name;
    EXPECT_NEAR(model.overall.hit_rates[0], model.evaluation.overall.hit_rates[0], 1e-9)
        << run.name;
    figures[run.name] = model;
  }
  std::fflush(stdout);
  return figures;
}

class SyntheticRetrievalTest : public ::testing::TestWithParam<int> {};

TEST_P(SyntheticRetrievalTest, DatAndAtnnAgainstThePlantedTruth) {
  const int seed = GetParam();
  SyntheticSet set;
  ASSERT_NO_FATAL_FAILURE(GenerateSet(seed, &set));
  const RetrievalMetrics popularity_overall = ScoreBaselines(seed, set);
  std::map<std::string, ModelFigures> figures =
      TrainAndScoreAll(seed, set,
                       {{"two_tower", "synthetic_retrieval_two_tower.pbtxt"},
                        {"dat", "synthetic_retrieval_dat.pbtxt"},
                        {"atnn", "synthetic_retrieval_atnn.pbtxt"},
                        {"atnn_item_id_only", "synthetic_retrieval_atnn.pbtxt", {"item_id"}}});
  ASSERT_FALSE(HasFailure());

  for (const char* name : {"two_tower", "dat"}) {
    EXPECT_GE(figures[name].overall.hit_rates[1],
              popularity_overall.hit_rates[1] + kMinHitRate50GainOverPopularity)
        << name;
  }
  EXPECT_GE(figures["dat"].by_category.minor.hit_rates[1],
            figures["two_tower"].by_category.minor.hit_rates[1] - kMaxDatMinorHitRate50Loss);
  const ModelFigures& atnn = figures["atnn"];
  ASSERT_TRUE(atnn.popularity_spearman.has_value());
  EXPECT_GE(*atnn.popularity_spearman, kMinAtnnPopularityRho);
  ASSERT_TRUE(atnn.major_popularity_spearman.has_value());
  EXPECT_GE(*atnn.major_popularity_spearman, kMinAtnnMajorPopularityRho);
  ASSERT_TRUE(figures["atnn_item_id_only"].popularity_spearman.has_value());
  EXPECT_GE(*atnn.popularity_spearman,
            *figures["atnn_item_id_only"].popularity_spearman + kMinAtnnRhoGainOverItemIdOnly);
  // The trainer's own rho, against the observed eval clicks of the new items, agrees.
  ASSERT_TRUE(atnn.evaluation.new_item_popularity_spearman.has_value());
  EXPECT_GE(*atnn.evaluation.new_item_popularity_spearman, kMinAtnnPopularityRho);
}

INSTANTIATE_TEST_SUITE_P(Seeds, SyntheticRetrievalTest, ::testing::Values(1, 2, 3));

// The DAT ablations of docs/models.md on the validation seeds (--gtest_filter='*DatAblations*',
// about 40 s; the figures are in the log). It sets no bar on the variants, whose order the
// seeds' noise decides; it checks, as every run here, that each variant trains and that its
// exported vectors reproduce the trainer's own hit rates.
class SyntheticRetrievalValidation : public ::testing::TestWithParam<int> {};

TEST_P(SyntheticRetrievalValidation, DatAblations) {
  const int seed = GetParam();
  SyntheticSet set;
  ASSERT_NO_FATAL_FAILURE(GenerateSet(seed, &set));
  ScoreBaselines(seed, set);
  const std::vector<std::string> no_category = {"item_id", "tier"};
  TrainAndScoreAll(
      seed, set,
      {{"two_tower", "synthetic_retrieval_two_tower.pbtxt"},
       {"dat", "synthetic_retrieval_dat.pbtxt"},
       {"dat_alignment_0", "synthetic_retrieval_dat.pbtxt", {}, 0.0f},
       {"dat_alignment_1", "synthetic_retrieval_dat.pbtxt", {}, 1.0f},
       {"dat_amm_0", "synthetic_retrieval_dat.pbtxt", {}, std::nullopt, 0.0f},
       {"two_tower_no_category", "synthetic_retrieval_two_tower.pbtxt", no_category},
       {"dat_no_category", "synthetic_retrieval_dat.pbtxt", no_category},
       {"dat_no_category_align_0", "synthetic_retrieval_dat.pbtxt", no_category, 0.0f},
       {"dat_no_category_align_1", "synthetic_retrieval_dat.pbtxt", no_category, 1.0f}});
}

INSTANTIATE_TEST_SUITE_P(ValidationSeeds, SyntheticRetrievalValidation,
                         ::testing::Values(101, 102, 103));

TEST(SyntheticRetrievalGeneratorTest, AnAbsurdArgumentIsAnErrorNamingIt) {
  const std::string dir = MakeTempDir("synthetic_retrieval_generator_test");
  absl::StatusOr<ChildProcess> generator = ChildProcess::Start(
      {"/usr/bin/python3", std::string(GRANARY_SOURCE_DIR) + "/tests/bench/synthetic_retrieval.py",
       "--output_dir=" + dir + "/data", "--major_share=1.5"},
      dir + "/generator.log");
  ASSERT_TRUE(generator.ok()) << generator.status();
  const std::optional<int> exit_code = generator->WaitForExit(kGeneratorTimeout);
  ASSERT_TRUE(exit_code.has_value()) << "the generator did not exit";
  EXPECT_NE(*exit_code, 0);
  EXPECT_NE(generator->ReadLog().find("--major_share must be in (0, 1)"), std::string::npos)
      << generator->ReadLog();
  EXPECT_FALSE(std::filesystem::exists(dir + "/data/train.tsv"));
}

}  // namespace
}  // namespace granary
