// granary_ralm_movielens: RALM's look-alike stage (worker/train/ralm_lookalike_trainer.h) on the
// MovieLens files of granary_movielens_convert, beside its average-pooled ablation and the
// two-tower model whose vectors it starts from.
//
//   granary_ralm_movielens --data_dir=/tmp/ml --vectors_dir=/tmp/out [--num_clusters=20] ...
//
// --data_dir holds train-*.tsv.gz and eval.tsv.gz (or a validation split laid out the same way,
// as tests/bench/movielens_validation.sh makes it); --vectors_dir the item_vectors.vec and
// user_vectors.vec a two_tower or ralm_user run on the same split exported (docs/models.md,
// "Retrieval"). With --job_config (that run's job config) any dataset: the train and eval files,
// the user, item and click columns come from the job.
//
// The stream is every rating, train files then eval file, in file order (time). Stage 1, the
// user's representation, is the normalized mean of the run's item vectors of the movies the
// user liked (click = 1) strictly before the rating, or with --user_vectors=exported the user's
// exported vector; a rating of a user who liked nothing yet is not scored by any model. The
// look-alike stage trains on the train files and is evaluated on the eval file, its seeds refreshed
// from the stream as it goes (no weight changes). The two-tower scores a rating by <exported user
// vector, item vector>: the user's vector as of their last eval rating, so slightly ahead of time
// for earlier ones. Printed per model: AUC of the click label over the scored eval ratings and over
// those of movies new in the eval file (absent from every train file), and precision@K
// (lookalike_metrics.h) overall and on new movies. The simple baseline, no model, scores a rating
// by the number of the user's earlier likes.
#include <glob.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/feature_key.h"
#include "common/process_init.h"
#include "common/vector_file.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "worker/batch_parser.h"
#include "worker/job_config.h"
#include "worker/line_source.h"
#include "worker/models/model_config.h"
#include "worker/models/model_factory.h"
#include "worker/train/lookalike_metrics.h"
#include "worker/train/metrics.h"
#include "worker/train/ralm_lookalike_trainer.h"

DEFINE_string(data_dir, "", "Folder with train-*.tsv.gz and eval.tsv.gz (required).");
DEFINE_string(vectors_dir, "",
              "Folder with a two_tower run's item_vectors.vec and user_vectors.vec (required).");
DEFINE_int32(num_clusters, 20, "K, the most k-means centroids per movie's seeds.");
DEFINE_int32(max_seeds, 100, "Seeds kept per movie, the most recent likers.");
DEFINE_int32(kmeans_iterations, 10, "Bound on the Lloyd iterations of one clustering.");
DEFINE_int32(epochs, 5, "Passes of the look-alike stage over the train files.");
DEFINE_int32(batch_size, 256, "Ratings per Adam step.");
DEFINE_int32(refresh_interval, 256, "Ratings between two re-clusterings of the seeds.");
DEFINE_double(learning_rate, 0.01, "Adam's step size.");
DEFINE_int32(precision_k, 10, "K of precision@K: the top users of each movie.");
DEFINE_int32(negatives_per_rating, 0,
             "Sampled non-clicks added after each rating: earlier likers shown the same movie.");
DEFINE_uint64(seed, 1, "Seeds the look-alike weights and the k-means draws.");
DEFINE_string(job_config, "",
              "A ralm_user or two_tower job config: the stream is its train_files then "
              "eval_files (relative ones under --data_dir), the user and item its retrieval id "
              "columns, the click its task's label column. Empty: the MovieLens files and "
              "columns (user_id, movie_id, click).");
DEFINE_string(user_vectors, "liked_items",
              "The look-alike's user at each rating: liked_items, the normalized mean of the item "
              "vectors of the movies the user liked before it, or exported, the user's vector in "
              "user_vectors.vec (a ralm_user or two_tower run's; as of the user's last eval "
              "rating, so ahead of time).");
DEFINE_double(initial_merge_weight, 5.0,
              "The starting weight of each cosine in the look-alike score (LookalikeOptions).");

namespace granary {
namespace {

constexpr float kClick = 0.5f;
// Draws per sampled non-click before giving up (the drawn user may be the rating's own).
constexpr int kMaxNegativeDraws = 16;

struct Rating {
  uint64_t user = 0;
  uint64_t item = 0;
  float click = 0;
  bool eval = false;
};

struct KeyedVectors {
  int dim = 0;
  absl::flat_hash_map<uint64_t, int32_t> row_of;
  std::vector<float> values;
  const float* Find(uint64_t key) const {
    auto found = row_of.find(key);
    return found == row_of.end() ? nullptr : &values[static_cast<size_t>(found->second) * dim];
  }
};

absl::StatusOr<KeyedVectors> ReadVectors(const std::string& path) {
  absl::StatusOr<VectorSet> set = ReadVectorFile(path);
  if (!set.ok()) return set.status();
  KeyedVectors vectors;
  vectors.dim = static_cast<int>(set->header.dim());
  for (size_t i = 0; i < set->keys.size(); ++i) {
    vectors.row_of[set->keys[i]] = static_cast<int32_t>(i);
  }
  vectors.values = std::move(set->values);
  return vectors;
}

// Where the stream is and which columns it reads: the MovieLens converter's, or a job config's.
struct StreamSpec {
  std::vector<std::string> train_patterns{"train-*.tsv.gz"};
  std::vector<std::string> eval_patterns{"eval.tsv.gz"};
  std::string user_column = "user_id";
  std::string item_column = "movie_id";
  std::string click_column = "click";
  // The feature-key seeds of the id columns, as the reader hashes them (their hash_space).
  uint64_t user_seed = FieldSeed("user_id");
  uint64_t item_seed = FieldSeed("movie_id");
};

absl::StatusOr<StreamSpec> StreamOfJob(const std::string& path) {
  absl::StatusOr<JobSpec> spec = LoadJobConfig(path);
  if (!spec.ok()) return spec.status();
  const proto::ModelConfig& model = spec->job.model();
  const proto::RetrievalConfig* retrieval = nullptr;
  if (model.has_ralm_user()) retrieval = &model.ralm_user().retrieval();
  if (model.has_two_tower()) retrieval = &model.two_tower().retrieval();
  if (retrieval == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the look-alike reads a ralm_user or two_tower job, not ",
                     ArchitectureName(model)));
  }
  StreamSpec stream;
  stream.train_patterns.assign(spec->job.training().train_files().begin(),
                               spec->job.training().train_files().end());
  stream.eval_patterns.assign(spec->job.training().eval_files().begin(),
                              spec->job.training().eval_files().end());
  if (stream.eval_patterns.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": training.eval_files is empty; the look-alike is judged on them"));
  }
  stream.user_column = retrieval->user_id_column();
  stream.item_column = retrieval->item_id_column();
  stream.click_column = model.tasks(0).label_column();
  // LoadJobConfig checked that both are CATEGORICAL columns of the dataset.
  stream.user_seed =
      FieldSeed(ColumnHashSpace(*FindDatasetColumn(spec->dataset, stream.user_column)));
  stream.item_seed =
      FieldSeed(ColumnHashSpace(*FindDatasetColumn(spec->dataset, stream.item_column)));
  return stream;
}

// The files matching `patterns` (relative ones under --data_dir), each pattern's sorted; NotFound
// naming a pattern that matches none.
absl::StatusOr<std::vector<std::string>> FilesOf(const std::vector<std::string>& patterns) {
  std::vector<std::string> files;
  for (const std::string& pattern : patterns) {
    const std::string full =
        !pattern.empty() && pattern.front() == '/' ? pattern : FLAGS_data_dir + "/" + pattern;
    glob_t matches;
    if (glob(full.c_str(), 0, nullptr, &matches) != 0) {
      return absl::NotFoundError(absl::StrCat("no file matches ", full));
    }
    files.insert(files.end(), matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
    globfree(&matches);
  }
  return files;
}

// Appends the ratings of one file, naming file:line on a malformed one.
absl::Status ReadRatings(const std::string& path, bool eval, const StreamSpec& stream,
                         std::vector<Rating>* ratings) {
  absl::StatusOr<LineSource> source = LineSource::Open(path);
  if (!source.ok()) return source.status();
  std::string_view line;
  int user_column = -1, item_column = -1, click_column = -1;
  if (source->NextLine(&line)) {
    const std::vector<absl::string_view> names =
        absl::StrSplit(absl::string_view(line.data(), line.size()), '\t');
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == stream.user_column) user_column = static_cast<int>(i);
      if (names[i] == stream.item_column) item_column = static_cast<int>(i);
      if (names[i] == stream.click_column) click_column = static_cast<int>(i);
    }
  }
  if (user_column < 0 || item_column < 0 || click_column < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: the header lacks ",
                                                   stream.user_column, ", ", stream.item_column,
                                                   " or ", stream.click_column));
  }
  const size_t needed = std::max({user_column, item_column, click_column}) + 1;
  while (source->NextLine(&line)) {
    const std::vector<absl::string_view> cells =
        absl::StrSplit(absl::string_view(line.data(), line.size()), '\t');
    float click = 0;
    if (cells.size() < needed || !absl::SimpleAtof(cells[click_column], &click)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", source->line_number(), ": too few columns or a bad click"));
    }
    const absl::string_view user = cells[user_column];
    const absl::string_view item = cells[item_column];
    ratings->push_back({FeatureKey(stream.user_seed, std::string_view(user.data(), user.size())),
                        FeatureKey(stream.item_seed, std::string_view(item.data(), item.size())),
                        click, eval});
  }
  return source->status();
}

struct ModelFigures {
  double auc = 0, new_auc = 0, precision = 0, new_precision = 0;
  int64_t precision_items = 0, new_precision_items = 0;
};

ModelFigures FiguresOf(const std::vector<Rating>& eval, const std::vector<float>& scores,
                       const std::vector<uint8_t>& scored,
                       const absl::flat_hash_set<uint64_t>& train_items) {
  std::vector<ScoredLabel> all, fresh;
  std::vector<ItemScoredLabel> all_items, fresh_items;
  for (size_t i = 0; i < eval.size(); ++i) {
    if (!scored[i]) continue;
    all.push_back({scores[i], eval[i].click});
    all_items.push_back({eval[i].item, scores[i], eval[i].click});
    if (!train_items.contains(eval[i].item)) {
      fresh.push_back({scores[i], eval[i].click});
      fresh_items.push_back({eval[i].item, scores[i], eval[i].click});
    }
  }
  ModelFigures figures;
  figures.auc = Auc(std::move(all)).value_or(NAN);
  figures.new_auc = Auc(std::move(fresh)).value_or(NAN);
  if (auto p = MeanPrecisionAtK(std::move(all_items), FLAGS_precision_k)) {
    figures.precision = p->precision;
    figures.precision_items = p->items;
  }
  if (auto p = MeanPrecisionAtK(std::move(fresh_items), FLAGS_precision_k)) {
    figures.new_precision = p->precision;
    figures.new_precision_items = p->items;
  }
  return figures;
}

absl::Status Run() {
  if (FLAGS_data_dir.empty() || FLAGS_vectors_dir.empty()) {
    return absl::InvalidArgumentError("--data_dir and --vectors_dir are required");
  }
  if (FLAGS_user_vectors != "liked_items" && FLAGS_user_vectors != "exported") {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad flag: --user_vectors is '", FLAGS_user_vectors, "', not liked_items or exported"));
  }
  absl::StatusOr<KeyedVectors> items = ReadVectors(FLAGS_vectors_dir + "/item_vectors.vec");
  if (!items.ok()) return items.status();
  absl::StatusOr<KeyedVectors> users = ReadVectors(FLAGS_vectors_dir + "/user_vectors.vec");
  if (!users.ok()) return users.status();

  StreamSpec stream;
  if (!FLAGS_job_config.empty()) {
    absl::StatusOr<StreamSpec> of_job = StreamOfJob(FLAGS_job_config);
    if (!of_job.ok()) return of_job.status();
    stream = *std::move(of_job);
  }
  std::vector<Rating> ratings;
  for (const bool eval : {false, true}) {
    absl::StatusOr<std::vector<std::string>> files =
        FilesOf(eval ? stream.eval_patterns : stream.train_patterns);
    if (!files.ok()) return files.status();
    for (const std::string& file : *files) {
      absl::Status status = ReadRatings(file, eval, stream, &ratings);
      if (!status.ok()) return status;
    }
  }

  const bool exported_users = FLAGS_user_vectors == "exported";
  if (exported_users && users->dim != items->dim) {
    return absl::InvalidArgumentError(absl::StrCat(FLAGS_vectors_dir, ": user vectors of dim ",
                                                   users->dim, ", item vectors of dim ",
                                                   items->dim));
  }
  // Stage 1: each impression's user vector from the user's earlier likes. The trainer's "user"
  // of an impression is its index, so a user's vector can change from one to the next.
  const int dim = items->dim;
  UserVectors vectors;
  std::vector<float> rows;
  absl::flat_hash_map<uint64_t, Eigen::VectorXf> liked_sum;
  std::vector<uint64_t> likers;  // users with a like so far, in order of their first
  absl::flat_hash_map<uint64_t, int> like_count;
  std::vector<float> earlier_likes;  // per eval impression: the simple baseline's score
  std::vector<Impression> train, eval;
  std::vector<Rating> eval_ratings;
  absl::flat_hash_set<uint64_t> train_items;
  const auto add_impression = [&](uint64_t user, uint64_t item, float click, bool in_eval) {
    const uint64_t key = train.size() + eval.size();
    auto sum = liked_sum.find(user);
    // The same ratings are scored in both modes: those of users with an earlier like.
    if (sum != liked_sum.end()) {
      if (exported_users) {
        const float* exported = users->Find(user);
        if (exported != nullptr) {
          vectors.row_of[key] = static_cast<int32_t>(rows.size() / dim);
          rows.insert(rows.end(), exported, exported + dim);
        }
      } else {
        vectors.row_of[key] = static_cast<int32_t>(rows.size() / dim);
        const Eigen::VectorXf normalized = sum->second.normalized();
        rows.insert(rows.end(), normalized.data(), normalized.data() + dim);
      }
    }
    (in_eval ? eval : train).push_back({key, item, click});
    if (in_eval) {
      eval_ratings.push_back({user, item, click, true});
      auto count = like_count.find(user);
      earlier_likes.push_back(count == like_count.end() ? 0.0f : static_cast<float>(count->second));
    }
  };
  std::mt19937_64 rng(FLAGS_seed);
  for (const Rating& rating : ratings) {
    add_impression(rating.user, rating.item, rating.click, rating.eval);
    if (!rating.eval) train_items.insert(rating.item);
    // Sampled non-clicks: earlier likers shown the movie (in eval, those the two-tower has a
    // vector for, so that every model scores every impression).
    for (int n = 0; n < FLAGS_negatives_per_rating && !likers.empty(); ++n) {
      std::uniform_int_distribution<size_t> pick(0, likers.size() - 1);
      for (int draw = 0; draw < kMaxNegativeDraws; ++draw) {
        const uint64_t user = likers[pick(rng)];
        if (user == rating.user || (rating.eval && users->Find(user) == nullptr)) continue;
        add_impression(user, rating.item, 0.0f, rating.eval);
        break;
      }
    }
    const float* item = items->Find(rating.item);
    if (rating.click >= kClick && item != nullptr) {
      auto [sum, first] = liked_sum.try_emplace(rating.user, Eigen::VectorXf::Zero(dim));
      if (first) likers.push_back(rating.user);
      ++like_count[rating.user];
      sum->second += Eigen::Map<const Eigen::VectorXf>(item, dim);
    }
  }
  vectors.vectors = Eigen::Map<const nn::Matrix>(rows.data(), rows.size() / dim, dim);

  RalmLookalikeTrainerOptions options;
  options.seeds.max_seeds_per_item = FLAGS_max_seeds;
  options.seeds.clustering.num_clusters = FLAGS_num_clusters;
  options.seeds.clustering.max_iterations = FLAGS_kmeans_iterations;
  options.seeds.clustering.seed = FLAGS_seed;
  options.batch_size = FLAGS_batch_size;
  options.refresh_interval = FLAGS_refresh_interval;
  options.learning_rate = static_cast<float>(FLAGS_learning_rate);
  options.seed = FLAGS_seed;
  options.scorer.initial_merge_weight = static_cast<float>(FLAGS_initial_merge_weight);
  if (absl::Status valid = ValidateRalmLookalikeOptions(options); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad flag: ", valid.message()));
  }
  const auto look_alike = [&](RalmLookalikeTrainerOptions::Pooling pooling) {
    options.pooling = pooling;
    RalmLookalikeTrainer trainer(&vectors, options);
    for (int epoch = 0; epoch < FLAGS_epochs; ++epoch) {
      LOG(INFO) << "epoch " << epoch + 1 << " train loss " << trainer.Train(train);
    }
    std::vector<float> scores(eval.size());
    trainer.Evaluate(eval, absl::MakeSpan(scores));
    return scores;
  };
  const std::vector<float> ralm = look_alike(RalmLookalikeTrainerOptions::Pooling::kAttention);
  const std::vector<float> average = look_alike(RalmLookalikeTrainerOptions::Pooling::kAverage);
  std::vector<float> two_tower(eval.size());
  // Every model is judged on the same ratings: those of users with an earlier like and a
  // two-tower vector, of movies with one.
  std::vector<uint8_t> scored(eval.size());
  for (size_t i = 0; i < eval.size(); ++i) {
    const float* user = users->Find(eval_ratings[i].user);
    const float* item = items->Find(eval_ratings[i].item);
    scored[i] = !std::isnan(ralm[i]) && user != nullptr && item != nullptr;
    if (!scored[i]) continue;
    two_tower[i] = Eigen::Map<const Eigen::VectorXf>(user, dim).dot(
        Eigen::Map<const Eigen::VectorXf>(item, dim));
  }
  int64_t count = 0, fresh = 0;
  for (size_t i = 0; i < eval.size(); ++i) {
    count += scored[i];
    fresh += scored[i] && !train_items.contains(eval_ratings[i].item);
  }
  std::printf("scored %lld of %zu eval ratings, %lld of them of new movies\n",
              static_cast<long long>(count), eval.size(), static_cast<long long>(fresh));
  std::printf("model\tAUC\tnew AUC\tprecision@%d (movies)\tnew precision@%d (movies)\n",
              FLAGS_precision_k, FLAGS_precision_k);
  for (const auto& [name, scores] :
       {std::pair<const char*, const std::vector<float>*>{"user's earlier likes", &earlier_likes},
        {"two_tower", &two_tower},
        {"average-pooled seeds", &average},
        {"ralm", &ralm}}) {
    const ModelFigures f = FiguresOf(eval_ratings, *scores, scored, train_items);
    std::printf("%s\t%.4f\t%.4f\t%.4f (%lld)\t%.4f (%lld)\n", name, f.auc, f.new_auc, f.precision,
                static_cast<long long>(f.precision_items), f.new_precision,
                static_cast<long long>(f.new_precision_items));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  granary::InitProcess(
      "granary_ralm_movielens --data_dir=DIR --vectors_dir=DIR [--num_clusters=20] "
      "[--epochs=5] [--learning_rate=0.01] [--precision_k=10]",
      &argc, &argv);
  absl::Status status = granary::Run();
  if (!status.ok()) {
    LOG(ERROR) << status.message();
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
