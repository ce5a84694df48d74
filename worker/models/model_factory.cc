#include "worker/models/model_factory.h"

#include "worker/models/atnn_model.h"
#include "worker/models/autoint_model.h"
#include "worker/models/dupn_model.h"
#include "worker/models/esmm_model.h"
#include "worker/models/mind_model.h"
#include "worker/models/mmoe_model.h"
#include "worker/models/model_config.h"
#include "worker/models/ralm_user_model.h"
#include "worker/models/shared_bottom_model.h"
#include "worker/models/two_tower_model.h"

namespace granary {
namespace {

template <typename Architecture>
absl::StatusOr<std::unique_ptr<Model>> AsModel(
    absl::StatusOr<std::unique_ptr<Architecture>> model) {
  if (!model.ok()) return model.status();
  return std::unique_ptr<Model>(*std::move(model));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> CreateModel(const proto::ModelConfig& config,
                                                   const proto::DatasetConfig& dataset) {
  proto::ModelConfig model = config;
  FillModelDefaults(&model);
  switch (model.architecture_case()) {
    case proto::ModelConfig::kDupn:
      return AsModel(DupnModel::Create(model, dataset));
    case proto::ModelConfig::kSharedBottom:
      return AsModel(SharedBottomModel::Create(model, dataset));
    case proto::ModelConfig::kMmoe:
      return AsModel(MmoeModel::Create(model, dataset));
    case proto::ModelConfig::kAutoint:
      return AsModel(AutoIntModel::Create(model, dataset));
    case proto::ModelConfig::kTwoTower:
    case proto::ModelConfig::kDat:
      return AsModel(TwoTowerModel::Create(model, dataset));
    case proto::ModelConfig::kAtnn:
      return AsModel(AtnnModel::Create(model, dataset));
    case proto::ModelConfig::kEsmm:
      return AsModel(EsmmModel::Create(model, dataset));
    case proto::ModelConfig::kMind:
      return AsModel(MindModel::Create(model, dataset));
    case proto::ModelConfig::kRalmUser:
      return AsModel(RalmUserModel::Create(model, dataset));
    default:
      return absl::InvalidArgumentError("the model config has no supported architecture");
  }
}

std::string ArchitectureName(const proto::ModelConfig& model) {
  const google::protobuf::FieldDescriptor* field =
      model.GetDescriptor()->FindFieldByNumber(model.architecture_case());
  return field == nullptr ? "none" : field->name();
}

}  // namespace granary
