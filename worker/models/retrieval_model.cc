#include "worker/models/retrieval_model.h"

#include "absl/strings/str_cat.h"
#include "worker/job_config.h"

namespace granary {
namespace {

absl::Status Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status ValidateTower(const proto::TowerConfig& tower, const std::string& where,
                           const proto::DatasetConfig& dataset) {
  if (tower.fields().empty()) return Invalid(where + ".fields", "a tower needs >= 1 field");
  absl::StatusOr<EmbeddedFields> fields = EmbeddedFields::Create(tower.fields(), dataset);
  if (!fields.ok()) return Invalid(where + ".fields", std::string(fields.status().message()));
  if (tower.mlp().empty()) return Invalid(where + ".mlp", "a tower needs >= 1 layer");
  for (int i = 0; i < tower.mlp_size(); ++i) {
    if (tower.mlp(i) < 1)
      return Invalid(absl::StrCat(where, ".mlp[", i, "]"), "width must be >= 1");
  }
  return absl::OkStatus();
}

// The values of `column`'s keys for the batch, or InvalidArgument.
absl::Status PrepareIds(const Batch& batch, const std::string& column, std::vector<uint64_t>* ids,
                        std::vector<uint8_t>* present) {
  const int index = FindColumn(batch.categoricals, column);
  if (index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch has no CATEGORICAL column '", column, "'"));
  }
  *ids = batch.categoricals[index].keys;
  *present = batch.categoricals[index].present;
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRetrievalColumns(const proto::ModelConfig& model,
                                      const proto::RetrievalConfig& retrieval,
                                      const std::string& where,
                                      const proto::DatasetConfig& dataset) {
  if (model.tasks_size() != 1 || model.tasks(0).head() != proto::TaskConfig::BINARY) {
    return Invalid("model.tasks", absl::StrCat(where,
                                               " needs exactly one BINARY task (the "
                                               "label that marks positives)"));
  }
  for (const auto& [name, column] :
       {std::pair<std::string, std::string>{"user_id_column", retrieval.user_id_column()},
        {"item_id_column", retrieval.item_id_column()}}) {
    const proto::ColumnConfig* config = FindDatasetColumn(dataset, column);
    if (config == nullptr || config->role() != proto::ColumnConfig::CATEGORICAL) {
      return Invalid(absl::StrCat(where, ".retrieval.", name),
                     absl::StrCat("'", column, "' is not a CATEGORICAL column of the dataset"));
    }
  }
  if (retrieval.has_temperature() && !(retrieval.temperature() > 0)) {
    return Invalid(where + ".retrieval.temperature", "must be > 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateTowers(const proto::TowerConfig& user, const proto::TowerConfig& item,
                            const std::string& where, const proto::DatasetConfig& dataset) {
  absl::Status status = ValidateTower(user, where + ".user_tower", dataset);
  if (status.ok()) status = ValidateTower(item, where + ".item_tower", dataset);
  if (!status.ok()) return status;
  if (user.mlp(user.mlp_size() - 1) != item.mlp(item.mlp_size() - 1)) {
    return Invalid(where,
                   absl::StrCat("the user tower ends at width ", user.mlp(user.mlp_size() - 1),
                                ", the item tower at ", item.mlp(item.mlp_size() - 1)));
  }
  return absl::OkStatus();
}

absl::Status ValidateRetrievalModel(const proto::ModelConfig& model,
                                    const proto::DatasetConfig& dataset) {
  switch (model.architecture_case()) {
    case proto::ModelConfig::kTwoTower:
    case proto::ModelConfig::kDat: {
      const bool dat = model.has_dat();
      const std::string where = dat ? "model.dat.towers" : "model.two_tower";
      const proto::TwoTowerConfig& towers = dat ? model.dat().towers() : model.two_tower();
      absl::Status status = ValidateRetrievalColumns(model, towers.retrieval(), where, dataset);
      if (status.ok())
        status = ValidateTowers(towers.user_tower(), towers.item_tower(), where, dataset);
      if (!status.ok()) return status;
      if (towers.loss() == proto::TwoTowerConfig::LOSS_UNSPECIFIED) {
        return Invalid(where + ".loss", "say IN_BATCH_SOFTMAX or RANDOM_NEGATIVE_BCE");
      }
      if (towers.has_frequency_learning_rate() &&
          !(towers.frequency_learning_rate() > 0 && towers.frequency_learning_rate() <= 1)) {
        return Invalid(where + ".frequency_learning_rate", "must be in (0, 1]");
      }
      if (!dat) return absl::OkStatus();
      const proto::DatConfig& config = model.dat();
      const uint32_t width = towers.user_tower().mlp(towers.user_tower().mlp_size() - 1);
      if (width != model.embedding_dim()) {
        return Invalid(
            "model.dat.towers",
            absl::StrCat("the towers' last width ", width, " must equal embedding_dim ",
                         model.embedding_dim(), ": the augmented vectors mimic the tower outputs"));
      }
      for (const auto& [name, weight] :
           {std::pair<std::string, bool>{
                "amm_user_weight", !config.has_amm_user_weight() || config.amm_user_weight() >= 0},
            {"amm_item_weight", !config.has_amm_item_weight() || config.amm_item_weight() >= 0},
            {"category_alignment_weight",
             !config.has_category_alignment_weight() || config.category_alignment_weight() >= 0}}) {
        if (!weight) return Invalid("model.dat." + name, "must be >= 0");
      }
      if (!config.category_column().empty()) {
        const proto::ColumnConfig* column = FindDatasetColumn(dataset, config.category_column());
        if (column == nullptr || (column->role() != proto::ColumnConfig::CATEGORICAL &&
                                  column->role() != proto::ColumnConfig::MULTI_CATEGORICAL)) {
          return Invalid("model.dat.category_column",
                         absl::StrCat("'", config.category_column(),
                                      "' is not a CATEGORICAL or MULTI_CATEGORICAL column"));
        }
      }
      return absl::OkStatus();
    }
    case proto::ModelConfig::kAtnn: {
      const proto::AtnnConfig& atnn = model.atnn();
      absl::Status status =
          ValidateRetrievalColumns(model, atnn.retrieval(), "model.atnn", dataset);
      if (status.ok())
        status = ValidateTowers(atnn.user_tower(), atnn.item_tower(), "model.atnn", dataset);
      if (!status.ok()) return status;
      if (atnn.statistics_columns().empty()) {
        return Invalid("model.atnn.statistics_columns", "the item encoder needs >= 1 column");
      }
      for (int i = 0; i < atnn.statistics_columns_size(); ++i) {
        const proto::ColumnConfig* column = FindDatasetColumn(dataset, atnn.statistics_columns(i));
        if (column == nullptr || column->role() != proto::ColumnConfig::NUMERIC) {
          return Invalid(absl::StrCat("model.atnn.statistics_columns[", i, "]"),
                         absl::StrCat("'", atnn.statistics_columns(i),
                                      "' is not a NUMERIC column of the dataset"));
        }
      }
      if (atnn.has_similarity_weight() && !(atnn.similarity_weight() >= 0)) {
        return Invalid("model.atnn.similarity_weight", "must be >= 0");
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

absl::Status PrepareRetrievalInput(const Batch& batch, const std::vector<proto::TaskConfig>& tasks,
                                   const EmbeddedFields& user_fields,
                                   const EmbeddedFields& item_fields,
                                   const proto::RetrievalConfig& retrieval, RetrievalInput* input) {
  input->StartBatch(batch.size);
  absl::Status status = PrepareTaskLabels(batch, tasks, input);
  if (status.ok()) status = user_fields.Prepare(batch, input, &input->user_slots);
  if (status.ok()) status = item_fields.Prepare(batch, input, &input->item_slots);
  if (status.ok()) {
    status = PrepareIds(batch, retrieval.user_id_column(), &input->user_ids, &input->has_user_id);
  }
  if (status.ok()) {
    status = PrepareIds(batch, retrieval.item_id_column(), &input->item_ids, &input->has_item_id);
  }
  if (!status.ok()) return status;
  input->positive.resize(batch.size);
  for (int b = 0; b < batch.size; ++b) {
    input->positive[b] = input->has_label[0][b] && input->labels[0][b] >= kPositiveLabel;
  }
  return absl::OkStatus();
}

float TemperatureOf(const proto::RetrievalConfig& retrieval) {
  return retrieval.has_temperature() ? retrieval.temperature() : kDefaultTemperature;
}

void DotLogits(const nn::Matrix& users, const nn::Matrix& items, float temperature,
               nn::Matrix* logits) {
  logits->resize(users.rows(), 1);
  logits->col(0) = (users.array() * items.array()).rowwise().sum().matrix() / temperature;
}

}  // namespace granary
