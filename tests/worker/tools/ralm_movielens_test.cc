// granary_ralm_movielens (worker/tools/ralm_movielens.cc), run as a process on a tiny synthetic
// rating stream: which user vectors the look-alike reads (--user_vectors), a stream described by
// a job config (--job_config), and a bad flag.
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/feature_key.h"
#include "common/vector_file.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/reader_input.h"

namespace granary {
namespace {

constexpr int kUsersPerGroup = 20;
constexpr int kMoviesPerGroup = 10;

// Two groups of users (0 and 1) and of movies: a user clicks every movie of their group and
// not those of the other. Each movie is rated by every user, in rounds, so every user has
// earlier likes (and vectors) after the first round. The train file holds movies 0..7 of each
// group, the eval file the last two (new movies).
// Column and file names are MovieLens's unless given.
struct Names {
  std::string user = "user_id";
  std::string item = "movie_id";
  std::string click = "click";
  std::string item_hash_space = "movie_id";
  // LineSource reads plain text whatever the name (it tells gzip by its magic bytes).
  std::string train_file = "train-00.tsv.gz";
  std::string eval_file = "eval.tsv.gz";
};

void WriteRatings(const std::string& dir, const Names& names = {}) {
  std::filesystem::create_directories(dir);
  std::ofstream train(dir + "/" + names.train_file), eval(dir + "/" + names.eval_file);
  for (std::ofstream* out : {&train, &eval}) {
    *out << names.user << "\t" << names.item << "\t" << names.click << "\n";
  }
  for (int movie = 0; movie < kMoviesPerGroup; ++movie) {
    std::ofstream& out = movie < kMoviesPerGroup - 2 ? train : eval;
    for (int user = 0; user < kUsersPerGroup; ++user) {
      for (int group = 0; group < 2; ++group) {
        for (int user_group = 0; user_group < 2; ++user_group) {
          out << "u" << user_group << "_" << user << "\tm" << group << "_" << movie << "\t"
              << (group == user_group ? 1 : 0) << "\n";
        }
      }
    }
  }
}

// Exported user vectors that tell the groups apart, and item vectors that do not (all equal):
// the mean of liked items' vectors is then the same for every user.
void WriteVectors(const std::string& dir, const Names& names = {}) {
  proto::VectorFileHeader header;
  header.set_dim(2);
  header.set_kind(proto::VectorFileHeader::USER);
  absl::StatusOr<std::unique_ptr<VectorFileWriter>> users =
      VectorFileWriter::Create(dir + "/user_vectors.vec", header);
  ASSERT_TRUE(users.ok()) << users.status();
  const uint64_t user_seed = FieldSeed(names.user);
  const uint64_t movie_seed = FieldSeed(names.item_hash_space);
  for (int user = 0; user < kUsersPerGroup; ++user) {
    for (int group = 0; group < 2; ++group) {
      const std::vector<float> vector =
          group == 0 ? std::vector<float>{1, 0} : std::vector<float>{0, 1};
      ASSERT_TRUE(
          (*users)->Add(FeatureKey(user_seed, absl::StrCat("u", group, "_", user)), vector).ok());
    }
  }
  ASSERT_TRUE((*users)->Finish().ok());
  header.set_kind(proto::VectorFileHeader::ITEM);
  absl::StatusOr<std::unique_ptr<VectorFileWriter>> items =
      VectorFileWriter::Create(dir + "/item_vectors.vec", header);
  ASSERT_TRUE(items.ok()) << items.status();
  for (int movie = 0; movie < kMoviesPerGroup; ++movie) {
    for (int group = 0; group < 2; ++group) {
      ASSERT_TRUE(
          (*items)
              ->Add(FeatureKey(movie_seed, absl::StrCat("m", group, "_", movie)), {0.6f, 0.8f})
              .ok());
    }
  }
  ASSERT_TRUE((*items)->Finish().ok());
}

// Runs the tool; returns its exit code and sets *output to its stdout and stderr.
int RunTool(const std::vector<std::string>& flags, std::string* output) {
  std::vector<std::string> argv = {std::string(GRANARY_BINARY_DIR) + "/granary_ralm_movielens"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const std::string log_path = TestTempDir() + "/ralm_movielens.log";
  std::filesystem::remove(log_path);
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, log_path);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return -1;
  const std::optional<int> code = child->WaitForExit(absl::Seconds(120));
  *output = child->ReadLog();
  return code.value_or(-1);
}

// The AUC (column 1) and new-movie AUC (column 2) of the row `model` of the tool's table.
std::vector<double> RowOf(const std::string& output, const std::string& model) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    const std::vector<std::string> cells = absl::StrSplit(line, '\t');
    if (cells.size() == 5 && cells[0] == model) {
      double auc = 0, new_auc = 0;
      EXPECT_TRUE(absl::SimpleAtod(cells[1], &auc) && absl::SimpleAtod(cells[2], &new_auc));
      return {auc, new_auc};
    }
  }
  ADD_FAILURE() << "no row '" << model << "' in:\n" << output;
  return {0, 0};
}

TEST(RalmMovieLensTest, ExportedUserVectorsFeedTheLookalike) {
  const std::string dir = TestTempDir() + "/ralm_movielens";
  std::filesystem::remove_all(dir);
  WriteRatings(dir);
  WriteVectors(dir);
  // Seeds refreshed after every rating: the eval file's new movies have few.
  const std::vector<std::string> common = {"--data_dir=" + dir,    "--vectors_dir=" + dir,
                                           "--num_clusters=2",     "--epochs=3",
                                           "--refresh_interval=1", "--batch_size=16"};
  std::string liked, exported;
  std::vector<std::string> flags = common;
  flags.push_back("--user_vectors=liked_items");
  ASSERT_EQ(RunTool(flags, &liked), 0) << liked;
  flags.back() = "--user_vectors=exported";
  ASSERT_EQ(RunTool(flags, &exported), 0) << exported;
  // Every user's liked-item mean is the same vector: the look-alike cannot tell anyone apart.
  EXPECT_NEAR(RowOf(liked, "ralm")[0], 0.5, 0.05) << liked;
  // The exported vectors name each user's group, which decides every click. Measured 0.9: a
  // new movie's first ratings come before it has a seed (every movie is new in the eval file).
  const std::vector<double> ralm = RowOf(exported, "ralm");
  EXPECT_GT(ralm[0], 0.85) << exported;
  EXPECT_GT(ralm[1], 0.85) << exported;
  std::filesystem::remove_all(dir);
}

TEST(RalmMovieLensTest, AJobConfigNamesTheFilesAndColumns) {
  const std::string dir = TestTempDir() + "/ralm_job";
  std::filesystem::remove_all(dir);
  Names names;
  names.user = "viewer";
  names.item = "video";
  names.click = "watched";
  names.item_hash_space = "videos";
  names.train_file = "day1.tsv";
  names.eval_file = "day2.tsv";
  WriteRatings(dir, names);
  WriteVectors(dir, names);
  const std::string job = dir + "/job.pbtxt";
  std::ofstream(job) << R"(dataset {
  columns { name: "viewer" role: CATEGORICAL }
  columns { name: "video" role: CATEGORICAL hash_space: "videos" }
  columns { name: "watched" role: LABEL }
}
model {
  embedding_dim: 2
  ralm_user {
    retrieval { user_id_column: "viewer" item_id_column: "video" }
    user_fields: "viewer" user_mlp: [2]
    item_tower { fields: "video" mlp: [2] }
  }
  tasks { name: "watched" head: BINARY label_column: "watched" }
}
training { batch_size: 16 epochs: 1 train_files: "day1.tsv" eval_files: "day2.tsv" }
)";
  std::string output;
  ASSERT_EQ(RunTool({"--data_dir=" + dir, "--vectors_dir=" + dir, "--job_config=" + job,
                     "--num_clusters=2", "--epochs=3", "--refresh_interval=1", "--batch_size=16",
                     "--user_vectors=exported"},
                    &output),
            0)
      << output;
  EXPECT_GT(RowOf(output, "ralm")[1], 0.85) << output;
  std::filesystem::remove_all(dir);
}

TEST(RalmMovieLensTest, ABadUserVectorsFlagIsNamed) {
  std::string output;
  EXPECT_NE(
      RunTool({"--data_dir=/nonexistent", "--vectors_dir=/nonexistent", "--user_vectors=average"},
              &output),
      0);
  EXPECT_NE(output.find("--user_vectors is 'average', not liked_items or exported"),
            std::string::npos)
      << output;
}

}  // namespace
}  // namespace granary
