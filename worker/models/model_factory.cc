#include "worker/models/model_factory.h"

#include "worker/models/atnn_model.h"
#include "worker/models/dupn_model.h"
#include "worker/models/mmoe_model.h"
#include "worker/models/model_config.h"
#include "worker/models/shared_bottom_model.h"
#include "worker/models/two_tower_model.h"

namespace granary {

absl::StatusOr<std::unique_ptr<Model>> CreateModel(const proto::ModelConfig& config,
                                                   const proto::DatasetConfig& dataset) {
  proto::ModelConfig model = config;
  FillModelDefaults(&model);
  switch (model.architecture_case()) {
    case proto::ModelConfig::kDupn: {
      absl::StatusOr<std::unique_ptr<DupnModel>> dupn = DupnModel::Create(model, dataset);
      if (!dupn.ok()) return dupn.status();
      return std::unique_ptr<Model>(*std::move(dupn));
    }
    case proto::ModelConfig::kSharedBottom: {
      absl::StatusOr<std::unique_ptr<SharedBottomModel>> shared_bottom =
          SharedBottomModel::Create(model, dataset);
      if (!shared_bottom.ok()) return shared_bottom.status();
      return std::unique_ptr<Model>(*std::move(shared_bottom));
    }
    case proto::ModelConfig::kMmoe: {
      absl::StatusOr<std::unique_ptr<MmoeModel>> mmoe = MmoeModel::Create(model, dataset);
      if (!mmoe.ok()) return mmoe.status();
      return std::unique_ptr<Model>(*std::move(mmoe));
    }
    case proto::ModelConfig::kTwoTower:
    case proto::ModelConfig::kDat: {
      absl::StatusOr<std::unique_ptr<TwoTowerModel>> two_tower =
          TwoTowerModel::Create(model, dataset);
      if (!two_tower.ok()) return two_tower.status();
      return std::unique_ptr<Model>(*std::move(two_tower));
    }
    case proto::ModelConfig::kAtnn: {
      absl::StatusOr<std::unique_ptr<AtnnModel>> atnn = AtnnModel::Create(model, dataset);
      if (!atnn.ok()) return atnn.status();
      return std::unique_ptr<Model>(*std::move(atnn));
    }
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
