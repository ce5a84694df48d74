#include "worker/models/atnn_model.h"

#include "glog/logging.h"
#include "worker/models/model_config.h"

namespace granary {
using nn::Matrix;

absl::StatusOr<std::unique_ptr<AtnnModel>> AtnnModel::Create(const proto::ModelConfig& model,
                                                             const proto::DatasetConfig& dataset) {
  if (!model.has_atnn()) return absl::InvalidArgumentError("the model is not an atnn model");
  absl::Status status = ValidateRetrievalModel(model, dataset);
  if (!status.ok()) return status;
  absl::StatusOr<EmbeddedFields> user =
      EmbeddedFields::Create(model.atnn().user_tower().fields(), dataset);
  if (!user.ok()) return user.status();
  absl::StatusOr<EmbeddedFields> item =
      EmbeddedFields::Create(model.atnn().item_tower().fields(), dataset);
  if (!item.ok()) return item.status();
  absl::StatusOr<NumericFields> statistics =
      NumericFields::Create(model.atnn().statistics_columns(), dataset);
  if (!statistics.ok()) return statistics.status();
  return std::unique_ptr<AtnnModel>(
      new AtnnModel(model, *std::move(user), *std::move(item), *std::move(statistics)));
}

AtnnModel::AtnnModel(const proto::ModelConfig& model, EmbeddedFields user_fields,
                     EmbeddedFields item_fields, NumericFields statistics)
    : RetrievalModel(model, model.atnn().retrieval()),
      config_(model.atnn()),
      statistics_(std::move(statistics)),
      user_tower_(&params_, "user_tower", std::move(user_fields), dim_, 0,
                  config_.user_tower().mlp(), config_.user_tower().dropout()),
      encoder_(&params_, "item_encoder", item_fields, dim_, config_.statistics_columns_size(),
               config_.item_tower().mlp(), config_.item_tower().dropout()),
      generator_(&params_, "item_generator", std::move(item_fields), dim_, 0,
                 config_.item_tower().mlp(), config_.item_tower().dropout()),
      user_vector_sum_(Eigen::VectorXd::Zero(user_tower_.output_dim())) {}

std::unique_ptr<ModelInput> AtnnModel::NewInput() const { return std::make_unique<AtnnInput>(); }

absl::Status AtnnModel::Prepare(const Batch& batch, ModelInput* base) const {
  auto* input = static_cast<AtnnInput*>(base);
  absl::Status status = PrepareRetrievalInput(batch, tasks_, user_tower_.fields(),
                                              encoder_.fields(), config_.retrieval(), input);
  if (!status.ok()) return status;
  status = statistics_.Prepare(batch, &input->statistics);
  if (!status.ok()) return status;
  // A missing first column reads as 0: no statistics either way.
  input->has_statistics.resize(batch.size);
  for (int b = 0; b < batch.size; ++b) input->has_statistics[b] = input->statistics(b, 0) != 0;
  return absl::OkStatus();
}

void AtnnModel::Forward(const ModelInput& base, nn::ConstMatrixRef rows) {
  const auto& input = static_cast<const AtnnInput&>(base);
  user_vectors_ = &user_tower_.Forward(rows, input.user_slots, Matrix());
  encoder_vectors_ = &encoder_.Forward(rows, input.item_slots, input.statistics);
  generator_vectors_ = &generator_.Forward(rows, input.item_slots, Matrix());
  item_vectors_ = *encoder_vectors_;
  for (int b = 0; b < input.batch_size; ++b) {
    if (!input.has_statistics[b]) item_vectors_.row(b) = generator_vectors_->row(b);
  }
  ScorePairs(*user_vectors_, item_vectors_);
}

void AtnnModel::Backward(const ModelInput& base, std::vector<nn::LossValue>* losses,
                         Matrix* d_rows) {
  const auto& input = static_cast<const AtnnInput&>(base);
  params_.ZeroGrads();
  losses->resize(1);
  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);
  const bool generator_step = step_ % 2 == 1;
  ++step_;
  pairs_.clear();
  for (int b = 0; b < input.batch_size; ++b) {
    if (input.has_label[0][b]) pairs_.push_back({b, b, input.labels[0][b]});
  }
  const Matrix& items = generator_step ? *generator_vectors_ : *encoder_vectors_;
  (*losses)[0] =
      nn::SampledPairLogistic(*user_vectors_, items, pairs_, temperature_, &d_users_, &d_items_);
  const float weight = tasks_[0].loss_weight();
  d_items_ *= weight;
  if (!generator_step) {
    d_users_ *= weight;
    user_tower_.Backward(d_users_, input.user_slots, *d_rows);
    encoder_.Backward(d_items_, input.item_slots, *d_rows);
    for (const nn::ScoredPair& pair : pairs_) {
      user_vector_sum_ += user_vectors_->row(pair.user_row).transpose().cast<double>();
    }
    user_vector_count_ += static_cast<int64_t>(pairs_.size());
    similarity_ = {};
    return;
  }
  const nn::SampleWeighting labelled{{}, input.has_label[0]};
  similarity_ =
      nn::SquaredDistanceToTarget(*generator_vectors_, *encoder_vectors_, labelled, &d_similarity_);
  d_items_ += config_.similarity_weight() * d_similarity_;
  generator_.Backward(d_items_, input.item_slots, *d_rows);
}

void AtnnModel::StartActiveUsers() {
  user_vector_sum_.setZero();
  user_vector_count_ = 0;
}

void AtnnModel::AddActiveUsers(const RetrievalInput& input) {
  for (int b = 0; b < input.batch_size; ++b) {
    if (!input.has_label[0][b]) continue;
    user_vector_sum_ += user_vectors_->row(b).transpose().cast<double>();
    ++user_vector_count_;
  }
}

Matrix AtnnModel::mean_user_vector() const {
  Matrix mean = Matrix::Zero(1, user_vector_sum_.size());
  if (user_vector_count_ > 0) {
    mean.row(0) = (user_vector_sum_ / static_cast<double>(user_vector_count_)).cast<float>();
  }
  return mean;
}

void PopularityScores(const Matrix& mean_user, const Matrix& items, absl::Span<float> scores) {
  DCHECK_EQ(static_cast<Eigen::Index>(scores.size()), items.rows());
  for (Eigen::Index i = 0; i < items.rows(); ++i) scores[i] = items.row(i).dot(mean_user.row(0));
}

void AtnnModel::PopularityScores(const Matrix& items, absl::Span<float> scores) const {
  granary::PopularityScores(mean_user_vector(), items, scores);
}

}  // namespace granary
