#include "worker/models/mind_model.h"

#include <algorithm>
#include <limits>

#include "glog/logging.h"
#include "worker/models/model_config.h"
#include "worker/models/sequence_steps.h"
#include "worker/nn/embedding_pooling.h"

namespace granary {
namespace {

using nn::Matrix;

std::vector<std::string> CategoricalStepFields(const proto::ColumnConfig& behavior) {
  std::vector<std::string> names;
  for (const proto::StepFieldConfig& step : behavior.step_fields()) {
    if (step.kind() != proto::StepFieldConfig::NUMERIC) names.push_back(step.name());
  }
  return names;
}

nn::InterestRoutingOptions RoutingOptions(const proto::MindConfig& mind) {
  nn::InterestRoutingOptions options;
  options.num_interests = static_cast<int>(mind.num_interests());
  options.num_iterations = static_cast<int>(mind.routing_iterations());
  options.adaptive_count = mind.adaptive_interest_count();
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MindModel>> MindModel::Create(const proto::ModelConfig& model,
                                                             const proto::DatasetConfig& dataset) {
  if (!model.has_mind()) return absl::InvalidArgumentError("the model is not a mind model");
  absl::Status status = ValidateRetrievalModel(model, dataset);
  if (!status.ok()) return status;
  const proto::MindConfig& mind = model.mind();
  absl::StatusOr<EmbeddedFields> user = EmbeddedFields::Create(mind.user_tower().fields(), dataset);
  if (!user.ok()) return user.status();
  absl::StatusOr<EmbeddedFields> item = EmbeddedFields::Create(mind.item_tower().fields(), dataset);
  if (!item.ok()) return item.status();
  const proto::ColumnConfig* behavior = FindDatasetColumn(dataset, mind.behavior_column());
  return std::unique_ptr<MindModel>(
      new MindModel(model, *std::move(user), *std::move(item), CategoricalStepFields(*behavior)));
}

MindModel::MindModel(const proto::ModelConfig& model, EmbeddedFields user_fields,
                     EmbeddedFields item_fields, std::vector<std::string> step_fields)
    : RetrievalModel(model, model.mind().retrieval()),
      mind_(model.mind()),
      user_fields_(std::move(user_fields)),
      behavior_column_(mind_.behavior_column()),
      step_fields_(std::move(step_fields)),
      routing_(&params_, "mind.routing", static_cast<int>(step_fields_.size()) * dim_, dim_,
               RoutingOptions(mind_)),
      interest_hidden_(
          &params_, "mind.interest_mlp", dim_ + user_fields_.num_slots() * dim_,
          absl::MakeConstSpan(mind_.user_tower().mlp()).first(mind_.user_tower().mlp_size() - 1),
          mind_.user_tower().dropout()),
      interest_out_(&params_, "mind.interest_mlp.out", interest_hidden_.output_dim(),
                    static_cast<int>(mind_.user_tower().mlp(mind_.user_tower().mlp_size() - 1))),
      attention_(static_cast<int>(mind_.num_interests()), interest_out_.output_dim(),
                 mind_.attention_power()),
      item_tower_(&params_, "item_tower", std::move(item_fields), dim_, 0, mind_.item_tower().mlp(),
                  mind_.item_tower().dropout()),
      softmax_(temperature_, SamplingBiasCorrection(mind_)) {}

std::unique_ptr<ModelInput> MindModel::NewInput() const { return std::make_unique<MindInput>(); }

absl::Status MindModel::Prepare(const Batch& batch, ModelInput* base) const {
  auto* input = static_cast<MindInput*>(base);
  absl::Status status = PrepareRetrievalInput(batch, tasks_, user_fields_, item_tower_.fields(),
                                              mind_.retrieval(), input);
  if (!status.ok()) return status;
  absl::StatusOr<const SequenceColumn*> found =
      ColumnNamed(batch.sequences, behavior_column_, "SEQUENCE");
  if (!found.ok()) return found.status();
  const SequenceColumn& sequence = **found;
  const int n = batch.size;
  const int steps = SequenceLengths(sequence, n, &input->lengths);
  input->num_steps = steps;
  input->step_row_ids.resize(step_fields_.size());
  for (size_t j = 0; j < step_fields_.size(); ++j) {
    absl::StatusOr<const SequenceField*> field = StepFieldNamed(sequence, step_fields_[j]);
    if (!field.ok()) return field.status();
    PadSteps(
        sequence, input->lengths, steps, (*field)->keys, nn::kPaddingRow,
        [input](uint64_t key) { return input->RowOf(key); }, &input->step_row_ids[j]);
  }
  return absl::OkStatus();
}

void MindModel::Forward(const ModelInput& base, nn::ConstMatrixRef rows) {
  const auto& input = static_cast<const MindInput&>(base);
  const Eigen::Index n = input.batch_size;
  const int steps = input.num_steps;
  const int num_interests = routing_.num_interests();
  const int profile_width = user_fields_.num_slots() * dim_;
  const int width = interest_out_.output_dim();

  behaviours_.resize(steps * n, static_cast<Eigen::Index>(step_fields_.size()) * dim_);
  for (size_t j = 0; j < step_fields_.size(); ++j) {
    nn::GatherSequence(rows, input.step_row_ids[j], steps,
                       behaviours_.middleCols(static_cast<Eigen::Index>(j) * dim_, dim_));
  }
  const Matrix& routed = routing_.Forward(behaviours_, input.lengths);
  counts_.resize(n);
  for (Eigen::Index b = 0; b < n; ++b) counts_[b] = std::max(1, routing_.interest_counts()[b]);

  profile_.resize(n, profile_width);
  user_fields_.Pool(rows, input.user_slots, profile_);
  interest_input_.resize(num_interests * n, dim_ + profile_width);
  for (int k = 0; k < num_interests; ++k) {
    interest_input_.block(k * n, 0, n, dim_) = routed.middleCols(k * dim_, dim_);
    interest_input_.block(k * n, dim_, n, profile_width) = profile_;
  }
  const Matrix& interest_rows =
      interest_normalize_.Forward(interest_out_.Forward(interest_hidden_.Forward(interest_input_)));
  interests_.resize(n, num_interests * width);
  for (int k = 0; k < num_interests; ++k) {
    interests_.middleCols(k * width, width) = interest_rows.middleRows(k * n, n);
  }

  item_vectors_ = &item_tower_.Forward(rows, input.item_slots, no_extra_);
  trained_users_ = &attention_.Forward(interests_, counts_, *item_vectors_);

  best_interests_.resize(n, width);
  for (Eigen::Index b = 0; b < n; ++b) {
    int best = 0;
    float best_score = -std::numeric_limits<float>::infinity();
    for (int k = 0; k < counts_[b]; ++k) {
      const float score = interests_.row(b).segment(k * width, width).dot(item_vectors_->row(b));
      if (score > best_score) {
        best_score = score;
        best = k;
      }
    }
    best_interests_.row(b) = interests_.row(b).segment(best * width, width);
  }
  ScorePairs(best_interests_, *item_vectors_);
}

void MindModel::Backward(const ModelInput& base, std::vector<nn::LossValue>* losses,
                         Matrix* d_rows) {
  const auto& input = static_cast<const MindInput&>(base);
  const Eigen::Index n = input.batch_size;
  const int num_interests = routing_.num_interests();
  const int profile_width = user_fields_.num_slots() * dim_;
  const int width = interest_out_.output_dim();
  params_.ZeroGrads();
  losses->resize(1);
  d_rows->setZero(static_cast<Eigen::Index>(input.keys.size()), dim_);

  (*losses)[0] =
      softmax_.ComputeOnPositives(*trained_users_, *item_vectors_, input.positive, input.item_ids,
                                  tasks_[0].loss_weight(), &d_users_, &d_items_);

  attention_.Backward(d_users_);
  d_items_ += attention_.d_target();
  item_tower_.Backward(d_items_, input.item_slots, *d_rows);

  const Matrix& d_interests = attention_.d_interests();
  d_interest_rows_.resize(num_interests * n, width);
  for (int k = 0; k < num_interests; ++k) {
    d_interest_rows_.middleRows(k * n, n) = d_interests.middleCols(k * width, width);
  }
  const Matrix& d_input = interest_hidden_.Backward(
      interest_out_.Backward(interest_normalize_.Backward(d_interest_rows_)));
  d_routed_.resize(n, num_interests * dim_);
  d_profile_.setZero(n, profile_width);
  for (int k = 0; k < num_interests; ++k) {
    d_routed_.middleCols(k * dim_, dim_) = d_input.block(k * n, 0, n, dim_);
    d_profile_ += d_input.block(k * n, dim_, n, profile_width);
  }
  user_fields_.PoolBackward(d_profile_, input.user_slots, *d_rows);
  const Matrix& d_behaviours = routing_.Backward(d_routed_);
  for (size_t j = 0; j < step_fields_.size(); ++j) {
    nn::GatherSequenceBackward(d_behaviours.middleCols(static_cast<Eigen::Index>(j) * dim_, dim_),
                               input.step_row_ids[j], input.num_steps, *d_rows);
  }
}

}  // namespace granary
