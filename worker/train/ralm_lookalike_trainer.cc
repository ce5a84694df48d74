#include "worker/train/ralm_lookalike_trainer.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "worker/nn/loss.h"

namespace granary {
namespace {

constexpr float kClickLabel = 0.5f;

// InvalidArgument "<name> <value>: must be <rule>" unless `ok`.
template <typename Value>
absl::Status Require(bool ok, const char* name, Value value, const char* rule) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(name, " ", value, ": must be ", rule));
}

}  // namespace

absl::Status ValidateRalmLookalikeOptions(const RalmLookalikeTrainerOptions& options) {
  const SeedStoreOptions& seeds = options.seeds;
  const LookalikeOptions& scorer = options.scorer;
  for (absl::Status status : {
           Require(seeds.max_seeds_per_item >= 1, "seeds.max_seeds_per_item",
                   seeds.max_seeds_per_item, ">= 1"),
           Require(seeds.max_items >= 1, "seeds.max_items", seeds.max_items, ">= 1"),
           Require(seeds.clustering.num_clusters >= 1, "seeds.clustering.num_clusters",
                   seeds.clustering.num_clusters, ">= 1"),
           Require(seeds.clustering.max_iterations >= 0, "seeds.clustering.max_iterations",
                   seeds.clustering.max_iterations, ">= 0"),
           Require(scorer.attention_dim >= 1, "scorer.attention_dim", scorer.attention_dim, ">= 1"),
           Require(std::isfinite(scorer.initial_local_sharpness), "scorer.initial_local_sharpness",
                   scorer.initial_local_sharpness, "finite"),
           Require(std::isfinite(scorer.initial_merge_weight), "scorer.initial_merge_weight",
                   scorer.initial_merge_weight, "finite"),
           Require(std::isfinite(scorer.initial_mass_weight), "scorer.initial_mass_weight",
                   scorer.initial_mass_weight, "finite"),
           Require(std::isfinite(scorer.initial_size_weight), "scorer.initial_size_weight",
                   scorer.initial_size_weight, "finite"),
           Require(options.batch_size >= 1, "batch_size", options.batch_size, ">= 1"),
           Require(options.refresh_interval >= 1, "refresh_interval", options.refresh_interval,
                   ">= 1"),
           Require(options.learning_rate > 0 && std::isfinite(options.learning_rate),
                   "learning_rate", options.learning_rate, "finite and > 0"),
           Require(options.beta1 >= 0 && options.beta1 < 1, "beta1", options.beta1, "in [0, 1)"),
           Require(options.beta2 >= 0 && options.beta2 < 1, "beta2", options.beta2, "in [0, 1)"),
           Require(options.epsilon > 0, "epsilon", options.epsilon, "> 0"),
       }) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

RalmLookalikeTrainer::RalmLookalikeTrainer(const UserVectors* users,
                                           const RalmLookalikeTrainerOptions& options)
    : users_(users),
      options_(options),
      scorer_(&params_, "ralm", static_cast<int>(users->vectors.cols()), options.scorer),
      store_(std::make_unique<SeedStore>(static_cast<int>(users->vectors.cols()), options.seeds)) {
  const absl::Status valid = ValidateRalmLookalikeOptions(options);
  CHECK(valid.ok()) << valid;
  params_.Initialize(options.seed);
  proto::OptimizerConfig adam;
  adam.mutable_adam()->set_learning_rate(options.learning_rate);
  adam.mutable_adam()->set_beta1(options.beta1);
  adam.mutable_adam()->set_beta2(options.beta2);
  adam.mutable_adam()->set_epsilon(options.epsilon);
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(adam);
  CHECK(optimizer.ok()) << optimizer.status();
  optimizer_ = *std::move(optimizer);
  for (const auto& block : params_.blocks()) {
    const int size = static_cast<int>(block->value.size());
    slots_.emplace_back(static_cast<size_t>(optimizer_->num_slots()) * size);
    optimizer_->InitSlots(block->value.data(), slots_.back().data(), size);
  }
  metas_.resize(params_.blocks().size());
}

double RalmLookalikeTrainer::Train(absl::Span<const Impression> stream) {
  store_ = std::make_unique<SeedStore>(static_cast<int>(users_->vectors.cols()), options_.seeds);
  since_refresh_ = 0;
  double total = 0;
  int64_t count = 0;
  for (size_t first = 0; first < stream.size(); first += options_.batch_size) {
    const auto [batch_total, batch_count] =
        RunBatch(stream.subspan(first, options_.batch_size), true, {});
    total += batch_total;
    count += batch_count;
  }
  return count > 0 ? total / static_cast<double>(count) : 0.0;
}

void RalmLookalikeTrainer::Evaluate(absl::Span<const Impression> stream, absl::Span<float> scores) {
  CHECK_EQ(scores.size(), stream.size());
  for (size_t first = 0; first < stream.size(); first += options_.batch_size) {
    RunBatch(stream.subspan(first, options_.batch_size), false,
             scores.subspan(first, options_.batch_size));
  }
}

std::pair<double, int64_t> RalmLookalikeTrainer::RunBatch(absl::Span<const Impression> batch,
                                                          bool train, absl::Span<float> scores) {
  const int dim = static_cast<int>(users_->vectors.cols());
  const bool average = options_.pooling == RalmLookalikeTrainerOptions::Pooling::kAverage;
  kept_.clear();
  offsets_.assign(1, 0);
  labels_.clear();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (users_->row_of.contains(batch[i].user)) kept_.push_back(static_cast<int32_t>(i));
  }
  const int kept = static_cast<int>(kept_.size());
  batch_users_.resize(kept, dim);
  int total_seeds = 0;
  for (int b = 0; b < kept; ++b) {
    const SeedStore::ItemSeeds* seeds = store_->Find(batch[kept_[b]].item);
    total_seeds += seeds == nullptr ? 0 : (average ? 1 : static_cast<int>(seeds->centroids.rows()));
    offsets_.push_back(total_seeds);
  }
  batch_seeds_.resize(total_seeds, dim);
  batch_log_shares_.setZero(total_seeds, 1);
  for (int b = 0; b < kept; ++b) {
    const Impression& impression = batch[kept_[b]];
    batch_users_.row(b) = users_->vectors.row(users_->row_of.at(impression.user));
    labels_.push_back(impression.label >= kClickLabel ? 1.0f : 0.0f);
    const SeedStore::ItemSeeds* seeds = store_->Find(impression.item);
    if (seeds == nullptr) continue;
    if (average) {
      batch_seeds_.row(offsets_[b]) = seeds->mean;
    } else {
      batch_seeds_.middleRows(offsets_[b], seeds->centroids.rows()) = seeds->centroids;
      batch_log_shares_.middleRows(offsets_[b], seeds->log_shares.rows()) = seeds->log_shares;
    }
  }
  const nn::Matrix& logits =
      scorer_.Forward(batch_users_, batch_seeds_, batch_log_shares_, offsets_);
  std::pair<double, int64_t> loss = {0.0, 0};
  if (!scores.empty()) {
    std::fill(scores.begin(), scores.end(), std::numeric_limits<float>::quiet_NaN());
    for (int b = 0; b < kept; ++b) scores[kept_[b]] = logits(b, 0);
  }
  if (train && kept > 0) {
    const nn::LossValue value = nn::SigmoidBinaryCrossEntropy(logits, labels_, {}, &d_logits_);
    params_.ZeroGrads();
    scorer_.Backward(d_logits_);
    OptimizerStep();
    loss = {value.total, value.count};
  }
  for (int b = 0; b < kept; ++b) {
    if (labels_[b] > 0) store_->AddClick(batch[kept_[b]].item, batch_users_.row(b));
  }
  since_refresh_ += static_cast<int>(batch.size());
  if (since_refresh_ >= options_.refresh_interval) {
    store_->Refresh();
    since_refresh_ = 0;
  }
  return loss;
}

void RalmLookalikeTrainer::OptimizerStep() {
  // Each block is one row of its own width, so each goes alone to Apply.
  for (size_t i = 0; i < params_.blocks().size(); ++i) {
    nn::ParamBlock& block = *params_.blocks()[i];
    const RowUpdate update{block.value.data(), slots_[i].data(), &metas_[i], block.grad.data()};
    optimizer_->Apply(absl::MakeConstSpan(&update, 1), static_cast<int>(block.value.size()));
  }
}

}  // namespace granary
