#include "worker/models/two_tower_model.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "common/feature_key.h"
#include "glog/logging.h"
#include "worker/models/model_config.h"
#include "worker/models/one_user_batch.h"

namespace granary {
namespace {

using nn::Matrix;

// Draws per wanted negative before giving up on a batch whose positives share few items.
constexpr int kNegativeDrawsPerNegative = 8;

const proto::TwoTowerConfig& TowersOf(const proto::ModelConfig& model) {
  return model.has_dat() ? model.dat().towers() : model.two_tower();
}

// Gathers rows `rows[b]` of `source` into target [B, dim]; -1 gives a zero row.
void GatherRows(nn::ConstMatrixRef source, const std::vector<int32_t>& rows, int dim,
                Matrix* target) {
  target->resize(static_cast<Eigen::Index>(rows.size()), dim);
  for (size_t b = 0; b < rows.size(); ++b) {
    if (rows[b] < 0) {
      target->row(b).setZero();
    } else {
      target->row(b) = source.row(rows[b]);
    }
  }
}

void ScatterRows(const Matrix& gradient, const std::vector<int32_t>& rows, nn::MatrixRef target) {
  for (size_t b = 0; b < rows.size(); ++b) {
    if (rows[b] >= 0) target.row(rows[b]) += gradient.row(b);
  }
}

}  // namespace

uint64_t AugmentedKey(uint64_t id_key, bool user) {
  static const uint64_t kUserSeed = FieldSeed("dat.user_augment");
  static const uint64_t kItemSeed = FieldSeed("dat.item_augment");
  return FeatureKey(user ? kUserSeed : kItemSeed,
                    std::string_view(reinterpret_cast<const char*>(&id_key), sizeof(id_key)));
}

absl::StatusOr<std::unique_ptr<TwoTowerModel>> TwoTowerModel::Create(
    const proto::ModelConfig& model, const proto::DatasetConfig& dataset) {
  if (!model.has_two_tower() && !model.has_dat()) {
    return absl::InvalidArgumentError("the model is not a two_tower or dat model");
  }
  absl::Status status = ValidateRetrievalModel(model, dataset);
  if (!status.ok()) return status;
  const proto::TwoTowerConfig& towers = TowersOf(model);
  absl::StatusOr<EmbeddedFields> user =
      EmbeddedFields::Create(towers.user_tower().fields(), dataset);
  if (!user.ok()) return user.status();
  absl::StatusOr<EmbeddedFields> item =
      EmbeddedFields::Create(towers.item_tower().fields(), dataset);
  if (!item.ok()) return item.status();
  bool category_multi = false;
  if (model.has_dat() && !model.dat().category_column().empty()) {
    category_multi = FindDatasetColumn(dataset, model.dat().category_column())->role() ==
                     proto::ColumnConfig::MULTI_CATEGORICAL;
  }
  return std::unique_ptr<TwoTowerModel>(
      new TwoTowerModel(model, *std::move(user), *std::move(item), category_multi));
}

TwoTowerModel::TwoTowerModel(const proto::ModelConfig& model, EmbeddedFields user_fields,
                             EmbeddedFields item_fields, bool category_multi)
    : RetrievalModel(model, TowersOf(model).retrieval()),
      dat_(model.has_dat()),
      towers_(TowersOf(model)),
      dat_config_(model.dat()),
      category_multi_(category_multi),
      negative_rng_(towers_.negative_seed()),
      user_tower_(&params_, "user_tower", std::move(user_fields), dim_, dat_ ? dim_ : 0,
                  towers_.user_tower().mlp(), towers_.user_tower().dropout()),
      item_tower_(&params_, "item_tower", std::move(item_fields), dim_, dat_ ? dim_ : 0,
                  towers_.item_tower().mlp(), towers_.item_tower().dropout()),
      // Only the in-batch softmax is corrected: no estimator for RANDOM_NEGATIVE_BCE.
      softmax_(temperature_, towers_.loss() == proto::TwoTowerConfig::IN_BATCH_SOFTMAX
                                 ? SamplingBiasCorrection(towers_)
                                 : std::nullopt) {}

std::unique_ptr<ModelInput> TwoTowerModel::NewInput() const {
  return std::make_unique<TwoTowerInput>();
}

absl::Status TwoTowerModel::Prepare(const Batch& batch, ModelInput* base) const {
  auto* input = static_cast<TwoTowerInput*>(base);
  absl::Status status = PrepareRetrievalInput(batch, tasks_, user_tower_.fields(),
                                              item_tower_.fields(), towers_.retrieval(), input);
  if (!status.ok() || !dat_) return status;
  const int n = batch.size;
  input->user_augment_rows.resize(n);
  input->item_augment_rows.resize(n);
  for (int b = 0; b < n; ++b) {
    input->user_augment_rows[b] =
        input->has_user_id[b] ? input->RowOf(AugmentedKey(input->user_ids[b], true)) : -1;
    input->item_augment_rows[b] =
        input->has_item_id[b] ? input->RowOf(AugmentedKey(input->item_ids[b], false)) : -1;
  }
  input->categories.assign(n, nn::CategoryAlignment::kNoCategory);
  const std::string& column = dat_config_.category_column();
  if (column.empty()) return absl::OkStatus();
  const MultiCategoricalColumn* multi = nullptr;
  const CategoricalColumn* single = nullptr;
  if (category_multi_) {
    absl::StatusOr<const MultiCategoricalColumn*> found =
        ColumnNamed(batch.multi_categoricals, column, "MULTI_CATEGORICAL");
    if (!found.ok()) return found.status();
    multi = *found;
  } else {
    absl::StatusOr<const CategoricalColumn*> found =
        ColumnNamed(batch.categoricals, column, "CATEGORICAL");
    if (!found.ok()) return found.status();
    single = *found;
  }
  // An item's category is the first key of its cell, numbered in first-seen order.
  absl::flat_hash_map<uint64_t, int32_t> ids;
  for (int b = 0; b < n; ++b) {
    const uint64_t* key = nullptr;
    if (multi != nullptr) {
      if (multi->offsets[b] < multi->offsets[b + 1]) key = &multi->keys[multi->offsets[b]];
    } else if (single->present[b]) {
      key = &single->keys[b];
    }
    if (key != nullptr) {
      input->categories[b] = ids.try_emplace(*key, static_cast<int32_t>(ids.size())).first->second;
    }
  }
  return absl::OkStatus();
}

void TwoTowerModel::Forward(const ModelInput& base, nn::ConstMatrixRef rows) {
  const auto& input = static_cast<const TwoTowerInput&>(base);
  if (dat_) {
    GatherRows(rows, input.user_augment_rows, dim_, &user_augmented_);
    GatherRows(rows, input.item_augment_rows, dim_, &item_augmented_);
  }
  user_vectors_ = &user_tower_.Forward(rows, input.user_slots, user_augmented_);
  item_vectors_ = &item_tower_.Forward(rows, input.item_slots, item_augmented_);
  ScorePairs(*user_vectors_, *item_vectors_);
}

void TwoTowerModel::ForwardOneUser(const ModelInput& base, nn::ConstMatrixRef rows) {
  const auto& input = static_cast<const TwoTowerInput&>(base);
  if (!SameRowsForEverySample(input.user_slots) ||
      (dat_ && !RepeatsFirstBlock<int32_t>(input.user_augment_rows, 1))) {
    Forward(input, rows);
    return;
  }
  if (dat_) {
    user_augmented_.resize(1, dim_);
    if (input.user_augment_rows[0] < 0) {
      user_augmented_.setZero();
    } else {
      user_augmented_ = rows.row(input.user_augment_rows[0]);
    }
    GatherRows(rows, input.item_augment_rows, dim_, &item_augmented_);
  }
  FirstSampleRows(input.user_slots, &first_user_slots_);
  const Matrix& user_vector = user_tower_.Forward(rows, first_user_slots_, user_augmented_);
  repeated_user_vectors_ = user_vector.replicate(input.batch_size, 1);
  user_vectors_ = &repeated_user_vectors_;
  item_vectors_ = &item_tower_.Forward(rows, input.item_slots, item_augmented_);
  ScorePairs(*user_vectors_, *item_vectors_);
}

nn::LossValue TwoTowerModel::MainLossBackward(const TwoTowerInput& input) {
  const int n = input.batch_size;
  positives_.clear();
  positive_items_.clear();
  for (int b = 0; b < n; ++b) {
    if (!input.positive[b]) continue;
    positives_.push_back(b);
    positive_items_.push_back(input.item_ids[b]);
  }
  const Eigen::Index p = static_cast<Eigen::Index>(positives_.size());
  const int width = static_cast<int>(user_vectors_->cols());
  positive_users_.resize(p, width);
  positive_items_vectors_.resize(p, width);
  for (Eigen::Index i = 0; i < p; ++i) {
    positive_users_.row(i) = user_vectors_->row(positives_[i]);
    positive_items_vectors_.row(i) = item_vectors_->row(positives_[i]);
  }
  nn::LossValue loss;
  if (towers_.loss() == proto::TwoTowerConfig::IN_BATCH_SOFTMAX) {
    loss = softmax_.Compute(positive_users_, positive_items_vectors_, positive_items_,
                            &d_positive_users_, &d_positive_items_);
  } else {
    // Negatives: other positive rows, drawn uniformly over the batch's distinct items.
    std::vector<int32_t> distinct;
    absl::flat_hash_map<uint64_t, int32_t> row_of_item;
    for (Eigen::Index i = 0; i < p; ++i) {
      if (row_of_item.try_emplace(positive_items_[i], static_cast<int32_t>(i)).second) {
        distinct.push_back(static_cast<int32_t>(i));
      }
    }
    const int negatives = static_cast<int>(towers_.num_negatives());
    pairs_.clear();
    std::uniform_int_distribution<size_t> pick(0, distinct.empty() ? 0 : distinct.size() - 1);
    for (Eigen::Index i = 0; i < p; ++i) {
      pairs_.push_back({static_cast<int32_t>(i), static_cast<int32_t>(i), 1.0f});
      int drawn = 0;
      for (int attempt = 0; attempt < negatives * kNegativeDrawsPerNegative && drawn < negatives;
           ++attempt) {
        const int32_t j = distinct[pick(negative_rng_)];
        if (positive_items_[j] == positive_items_[i]) continue;
        pairs_.push_back({static_cast<int32_t>(i), j, 0.0f});
        ++drawn;
      }
    }
    loss = nn::SampledPairLogistic(positive_users_, positive_items_vectors_, pairs_, temperature_,
                                   &d_positive_users_, &d_positive_items_);
  }
  const float weight = tasks_[0].loss_weight();
  d_user_vectors_.setZero(n, width);
  d_item_vectors_.setZero(n, width);
  for (Eigen::Index i = 0; i < p; ++i) {
    d_user_vectors_.row(positives_[i]) = weight * d_positive_users_.row(i);
    d_item_vectors_.row(positives_[i]) = weight * d_positive_items_.row(i);
  }
  return loss;
}

void TwoTowerModel::Backward(const ModelInput& base, std::vector<nn::LossValue>* losses,
                             Matrix* d_rows) {
  const auto& input = static_cast<const TwoTowerInput&>(base);
  params_.ZeroGrads();
  losses->resize(1);
  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);
  (*losses)[0] = MainLossBackward(input);
  auxiliary_ = {};
  if (dat_) {
    const nn::SampleWeighting positives{{}, input.positive};
    const float amm_user = dat_config_.amm_user_weight();
    const float amm_item = dat_config_.amm_item_weight();
    const float alignment = dat_config_.category_alignment_weight();
    if (!dat_config_.category_column().empty()) {
      // Only the positives' items are the batch's items; the others take no part.
      std::vector<int32_t> categories = input.categories;
      for (int b = 0; b < input.batch_size; ++b) {
        if (!input.positive[b]) categories[b] = nn::CategoryAlignment::kNoCategory;
      }
      auxiliary_.category_alignment = alignment_.Compute(*item_vectors_, categories, &d_scratch_);
      d_item_vectors_ += alignment * d_scratch_;
    }
    // One tower's backward with its augmented vector, the same for both towers: the augmented
    // vector takes the tower's input gradient plus `weight` times that of its AMM loss, the
    // distance to the other tower's output on positives. Returns the AMM loss.
    auto backward_augmented = [&](Tower& tower, const Matrix& d_vectors,
                                  const std::vector<SlotRows>& slots, const Matrix& augmented,
                                  const Matrix& other_vectors, float weight,
                                  const std::vector<int32_t>& augment_rows) {
      const Matrix& d_augmented = tower.Backward(d_vectors, slots, *d_rows);
      const nn::LossValue amm =
          nn::SquaredDistanceToTarget(augmented, other_vectors, positives, &d_scratch_);
      d_scratch_ = weight * d_scratch_ + d_augmented;
      ScatterRows(d_scratch_, augment_rows, *d_rows);
      return amm;
    };
    auxiliary_.amm_user =
        backward_augmented(user_tower_, d_user_vectors_, input.user_slots, user_augmented_,
                           *item_vectors_, amm_user, input.user_augment_rows);
    auxiliary_.amm_item =
        backward_augmented(item_tower_, d_item_vectors_, input.item_slots, item_augmented_,
                           *user_vectors_, amm_item, input.item_augment_rows);
    return;
  }
  user_tower_.Backward(d_user_vectors_, input.user_slots, *d_rows);
  item_tower_.Backward(d_item_vectors_, input.item_slots, *d_rows);
}

}  // namespace granary
