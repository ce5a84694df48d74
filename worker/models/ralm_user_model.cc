#include "worker/models/ralm_user_model.h"

#include "glog/logging.h"
#include "worker/models/model_config.h"

namespace granary {
namespace {

using nn::Matrix;

absl::Span<const uint32_t> HiddenWidths(const proto::RalmUserConfig& ralm) {
  return absl::MakeConstSpan(ralm.user_mlp()).first(ralm.user_mlp_size() - 1);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RalmUserModel>> RalmUserModel::Create(
    const proto::ModelConfig& model, const proto::DatasetConfig& dataset) {
  if (!model.has_ralm_user())
    return absl::InvalidArgumentError("the model is not a ralm_user model");
  absl::Status status = ValidateRetrievalModel(model, dataset);
  if (!status.ok()) return status;
  const proto::RalmUserConfig& ralm = model.ralm_user();
  absl::StatusOr<EmbeddedFields> user = EmbeddedFields::Create(ralm.user_fields(), dataset);
  if (!user.ok()) return user.status();
  absl::StatusOr<NumericFields> numeric = NumericFields::Create(ralm.numeric_fields(), dataset);
  if (!numeric.ok()) return numeric.status();
  absl::StatusOr<EmbeddedFields> item = EmbeddedFields::Create(ralm.item_tower().fields(), dataset);
  if (!item.ok()) return item.status();
  return std::unique_ptr<RalmUserModel>(
      new RalmUserModel(model, *std::move(user), *std::move(numeric), *std::move(item)));
}

RalmUserModel::RalmUserModel(const proto::ModelConfig& model, EmbeddedFields user_fields,
                             NumericFields numeric_fields, EmbeddedFields item_fields)
    : RetrievalModel(model, model.ralm_user().retrieval()),
      ralm_(model.ralm_user()),
      user_fields_(std::move(user_fields)),
      numeric_fields_(std::move(numeric_fields)),
      num_field_vectors_(user_fields_.num_slots() + (numeric_fields_.num_fields() > 0 ? 1 : 0)),
      merge_(&params_, "ralm_user.merge", dim_, dim_, static_cast<int>(ralm_.attention_hidden())),
      user_hidden_(&params_, "ralm_user.mlp", dim_, HiddenWidths(ralm_)),
      user_out_(&params_, "ralm_user.mlp.out", user_hidden_.output_dim(),
                static_cast<int>(ralm_.user_mlp(ralm_.user_mlp_size() - 1))),
      item_tower_(&params_, "item_tower", std::move(item_fields), dim_, 0, ralm_.item_tower().mlp(),
                  ralm_.item_tower().dropout()),
      softmax_(temperature_, SamplingBiasCorrection(ralm_)) {
  if (numeric_fields_.num_fields() > 0) {
    numeric_projection_.emplace(&params_, "ralm_user.numeric", numeric_fields_.num_fields(), dim_);
  }
}

std::unique_ptr<ModelInput> RalmUserModel::NewInput() const {
  return std::make_unique<RalmUserInput>();
}

absl::Status RalmUserModel::Prepare(const Batch& batch, ModelInput* base) const {
  auto* input = static_cast<RalmUserInput*>(base);
  absl::Status status = PrepareRetrievalInput(batch, tasks_, user_fields_, item_tower_.fields(),
                                              ralm_.retrieval(), input);
  if (!status.ok()) return status;
  return numeric_fields_.Prepare(batch, &input->numeric);
}

void RalmUserModel::Forward(const ModelInput& base, nn::ConstMatrixRef rows) {
  const auto& input = static_cast<const RalmUserInput&>(base);
  const Eigen::Index n = input.batch_size;
  const int slots = user_fields_.num_slots();
  pooled_.resize(n, slots * dim_);
  user_fields_.Pool(rows, input.user_slots, pooled_);
  field_vectors_.resize(num_field_vectors_ * n, dim_);
  for (int f = 0; f < slots; ++f) {
    field_vectors_.middleRows(f * n, n) = pooled_.middleCols(f * dim_, dim_);
  }
  if (numeric_projection_) {
    field_vectors_.middleRows(slots * n, n) = numeric_projection_->Forward(input.numeric);
  }
  query_.setZero(n, dim_);
  for (int f = 0; f < num_field_vectors_; ++f) query_ += field_vectors_.middleRows(f * n, n);
  query_ /= static_cast<float>(num_field_vectors_);
  lengths_.assign(static_cast<size_t>(n), num_field_vectors_);
  const Matrix& merged = merge_.Forward(field_vectors_, query_, lengths_);
  user_vectors_ = &user_normalize_.Forward(user_out_.Forward(user_hidden_.Forward(merged)));
  item_vectors_ = &item_tower_.Forward(rows, input.item_slots, Matrix());
  ScorePairs(*user_vectors_, *item_vectors_);
}

void RalmUserModel::Backward(const ModelInput& base, std::vector<nn::LossValue>* losses,
                             Matrix* d_rows) {
  const auto& input = static_cast<const RalmUserInput&>(base);
  const Eigen::Index n = input.batch_size;
  params_.ZeroGrads();
  losses->resize(1);
  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);

  (*losses)[0] =
      softmax_.ComputeOnPositives(*user_vectors_, *item_vectors_, input.positive, input.item_ids,
                                  tasks_[0].loss_weight(), &d_user_vectors_, &d_item_vectors_);
  item_tower_.Backward(d_item_vectors_, input.item_slots, *d_rows);

  merge_.Backward(
      user_hidden_.Backward(user_out_.Backward(user_normalize_.Backward(d_user_vectors_))));
  // The query is the mean of the field vectors: each takes 1/F of its gradient.
  d_field_vectors_ = merge_.d_states();
  d_query_share_ = merge_.d_query() / static_cast<float>(num_field_vectors_);
  for (int f = 0; f < num_field_vectors_; ++f) {
    d_field_vectors_.middleRows(f * n, n) += d_query_share_;
  }
  const int slots = user_fields_.num_slots();
  d_pooled_.resize(n, slots * dim_);
  for (int f = 0; f < slots; ++f) {
    d_pooled_.middleCols(f * dim_, dim_) = d_field_vectors_.middleRows(f * n, n);
  }
  user_fields_.PoolBackward(d_pooled_, input.user_slots, *d_rows);
  if (numeric_projection_) {
    d_numeric_vectors_ = d_field_vectors_.middleRows(slots * n, n);
    numeric_projection_->Backward(d_numeric_vectors_);
  }
}

}  // namespace granary
