#include "worker/models/model_config.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "worker/models/frequency_estimator.h"

namespace granary {
namespace {

using google::protobuf::RepeatedField;
using google::protobuf::RepeatedPtrField;

bool Admits(ColumnUse use, const proto::ColumnConfig& column) {
  switch (use) {
    case ColumnUse::kPooled:
      if (column.role() == proto::ColumnConfig::SEQUENCE) {
        for (const proto::StepFieldConfig& step : column.step_fields()) {
          if (step.kind() == proto::StepFieldConfig::CATEGORICAL) return true;
        }
        return false;
      }
      [[fallthrough]];
    case ColumnUse::kCategorical:
      return column.role() == proto::ColumnConfig::CATEGORICAL ||
             column.role() == proto::ColumnConfig::MULTI_CATEGORICAL;
    case ColumnUse::kNumeric:
      return column.role() == proto::ColumnConfig::NUMERIC;
    case ColumnUse::kSequence:
      return column.role() == proto::ColumnConfig::SEQUENCE;
  }
  return false;
}

const char* RolesOf(ColumnUse use) {
  switch (use) {
    case ColumnUse::kPooled:
      return "CATEGORICAL, MULTI_CATEGORICAL or a SEQUENCE with a CATEGORICAL step field";
    case ColumnUse::kCategorical:
      return "CATEGORICAL or MULTI_CATEGORICAL";
    case ColumnUse::kNumeric:
      return "NUMERIC";
    case ColumnUse::kSequence:
      return "SEQUENCE";
  }
  return "";
}

// Every entry of `columns` (the repeated field `field_name` at `at`) admitted by `use`;
// `prefix` starts each error's reason.
absl::Status CheckColumns(const RepeatedPtrField<std::string>& columns,
                          const std::string& field_name, ColumnUse use, const ConfigLocation& at,
                          const proto::DatasetConfig& dataset, const std::string& prefix = "") {
  for (int i = 0; i < columns.size(); ++i) {
    absl::StatusOr<const proto::ColumnConfig*> column = ColumnFor(dataset, columns[i], use);
    if (!column.ok()) {
      return ConfigLocation::Invalid(at.At(field_name, i),
                                     absl::StrCat(prefix, column.status().message()));
    }
  }
  return absl::OkStatus();
}

// >= 1 entry of `columns`, each admitted by `use`.
absl::Status CheckFieldList(const RepeatedPtrField<std::string>& columns,
                            const std::string& field_name, ColumnUse use, const ConfigLocation& at,
                            const proto::DatasetConfig& dataset) {
  if (columns.empty())
    return ConfigLocation::Invalid(at.At(field_name), absl::StrCat(field_name, " is empty"));
  return CheckColumns(columns, field_name, use, at, dataset);
}

// Columns a model reads as numbers: an empty list is valid.
absl::Status CheckNumericFields(const RepeatedPtrField<std::string>& columns,
                                const ConfigLocation& at, const proto::DatasetConfig& dataset) {
  return CheckColumns(columns, "numeric_fields", ColumnUse::kNumeric, at, dataset,
                      "numeric_fields: ");
}

// A layer list: >= 1 layer, each >= 1 wide.
absl::Status CheckWidths(const RepeatedField<uint32_t>& widths, const std::string& field_name,
                         const ConfigLocation& at) {
  if (widths.empty()) {
    return ConfigLocation::Invalid(at.At(field_name),
                                   absl::StrCat(field_name, " needs >= 1 layer"));
  }
  for (int i = 0; i < widths.size(); ++i) {
    if (widths[i] < 1)
      return ConfigLocation::Invalid(at.At(field_name, i), "layer widths must be >= 1");
  }
  return absl::OkStatus();
}

// The `dropout` of an architecture's MLP (shared bottom, experts, DUPN's user MLP), held to
// TaskConfig.dropout's range: a rate of 1 would drop every unit (and scale by 1 / 0); NaN is
// refused too.
absl::Status CheckMlpDropout(float dropout, const std::string& mlp_field,
                             const ConfigLocation& at) {
  if (!(dropout >= 0 && dropout < 1)) {
    return ConfigLocation::Invalid(
        at.At("dropout"),
        absl::StrCat("dropout (of ", mlp_field, ") must be in [0, 1), not ", dropout));
  }
  return absl::OkStatus();
}

absl::Status ValidateDupn(const proto::DupnConfig& dupn, const ConfigLocation& at,
                          const proto::DatasetConfig& dataset) {
  absl::Status status =
      CheckFieldList(dupn.user_fields(), "user_fields", ColumnUse::kCategorical, at, dataset);
  if (status.ok()) {
    status =
        CheckFieldList(dupn.item_fields(), "item_fields", ColumnUse::kCategorical, at, dataset);
  }
  if (status.ok()) status = CheckNumericFields(dupn.numeric_fields(), at, dataset);
  if (!status.ok()) return status;
  absl::StatusOr<const proto::ColumnConfig*> behavior =
      ColumnFor(dataset, dupn.behavior_column(), ColumnUse::kSequence);
  if (!behavior.ok()) {
    return ConfigLocation::Invalid(at.At("behavior_column"),
                                   absl::StrCat("behavior_column: ", behavior.status().message()));
  }
  if (dupn.lstm_hidden() < 1)
    return ConfigLocation::Invalid(at.At("lstm_hidden"), "lstm_hidden must be >= 1");
  if (dupn.attention_hidden() < 1) {
    return ConfigLocation::Invalid(at.At("attention_hidden"), "attention_hidden must be >= 1");
  }
  status = CheckWidths(dupn.user_mlp(), "user_mlp", at);
  if (!status.ok()) return status;
  return CheckMlpDropout(dupn.dropout(), "user_mlp", at);
}

// The input of a model built on PooledFieldsModel (shared-bottom, MMoE): pooled `fields` and
// `numeric_fields`, as PooledFieldsModel::CreateInputs reads them.
template <typename Config>
absl::Status CheckPooledInputs(const Config& config, const ConfigLocation& at,
                               const proto::DatasetConfig& dataset) {
  absl::Status status = CheckFieldList(config.fields(), "fields", ColumnUse::kPooled, at, dataset);
  if (status.ok()) status = CheckNumericFields(config.numeric_fields(), at, dataset);
  return status;
}

absl::Status ValidateSharedBottom(const proto::SharedBottomConfig& config, const ConfigLocation& at,
                                  const proto::DatasetConfig& dataset) {
  absl::Status status = CheckPooledInputs(config, at, dataset);
  if (!status.ok()) return status;
  status = CheckWidths(config.bottom_mlp(), "bottom_mlp", at);
  if (!status.ok()) return status;
  return CheckMlpDropout(config.dropout(), "bottom_mlp", at);
}

absl::Status ValidateMmoe(const proto::MmoeConfig& config, const ConfigLocation& at,
                          const proto::DatasetConfig& dataset) {
  absl::Status status = CheckPooledInputs(config, at, dataset);
  if (!status.ok()) return status;
  if (config.num_experts() < 1)
    return ConfigLocation::Invalid(at.At("num_experts"), "num_experts must be >= 1");
  status = CheckWidths(config.expert_mlp(), "expert_mlp", at);
  if (!status.ok()) return status;
  return CheckMlpDropout(config.dropout(), "expert_mlp", at);
}

absl::Status ValidateAutoInt(const proto::AutoIntConfig& config, const ConfigLocation& at,
                             const proto::DatasetConfig& dataset) {
  absl::Status status = CheckPooledInputs(config, at, dataset);
  if (!status.ok()) return status;
  for (const auto& [name, value] :
       {std::pair<std::string, uint32_t>{"attention_layers", config.attention_layers()},
        {"attention_heads", config.attention_heads()},
        {"attention_head_dim", config.attention_head_dim()}}) {
    if (value < 1) return ConfigLocation::Invalid(at.At(name), name + " must be >= 1");
  }
  return absl::OkStatus();
}

// ESMM's tasks: exactly the CTR and the CVR task, both BINARY, and a free name for the task it
// adds. Its errors name the esmm field.
absl::Status ValidateEsmm(const proto::ModelConfig& model, const ConfigLocation& at,
                          const proto::DatasetConfig& dataset) {
  const proto::EsmmConfig& esmm = model.esmm();
  absl::Status status = CheckPooledInputs(esmm, at, dataset);
  if (!status.ok()) return status;
  if (model.tasks_size() != 2) {
    return ConfigLocation::Invalid(
        at.Here(), absl::StrCat("esmm needs exactly two tasks, its ctr_task and cvr_task (the job "
                                "has ",
                                model.tasks_size(), ")"));
  }
  const std::string ctcvr = esmm.ctcvr_task().empty() ? kDefaultCtcvrTask : esmm.ctcvr_task();
  for (const auto& [field, name] :
       {std::pair<std::string, std::string>{"ctr_task", esmm.ctr_task()},
        {"cvr_task", esmm.cvr_task()}}) {
    const proto::TaskConfig* task = nullptr;
    for (const proto::TaskConfig& candidate : model.tasks()) {
      if (candidate.name() == name) task = &candidate;
    }
    if (task == nullptr) {
      return ConfigLocation::Invalid(at.At(field),
                                     absl::StrCat(field, " '", name, "' is not a task of the job"));
    }
    if (task->head() != proto::TaskConfig::BINARY) {
      return ConfigLocation::Invalid(
          at.At(field), absl::StrCat(field, " '", name,
                                     "' must be a BINARY task (pCTCVR = pCTR * pCVR is a product "
                                     "of probabilities)"));
    }
    if (name == ctcvr) {
      return ConfigLocation::Invalid(
          at.At("ctcvr_task"),
          absl::StrCat("ctcvr_task '", ctcvr, "' is the name of a task of the job"));
    }
  }
  if (esmm.ctr_task() == esmm.cvr_task()) {
    return ConfigLocation::Invalid(at.At("cvr_task"), "cvr_task is the same task as ctr_task");
  }
  if (esmm.has_ctcvr_loss_weight() && !(esmm.ctcvr_loss_weight() >= 0)) {
    return ConfigLocation::Invalid(at.At("ctcvr_loss_weight"), "ctcvr_loss_weight must be >= 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateTask(const proto::TaskConfig& task, const ConfigLocation& at,
                          const proto::DatasetConfig& dataset) {
  if (task.head() == proto::TaskConfig::HEAD_KIND_UNSPECIFIED) {
    return ConfigLocation::Invalid(at.source(),
                                   absl::StrCat("task '", task.name(), "' has no head kind"));
  }
  const proto::ColumnConfig* label = FindDatasetColumn(dataset, task.label_column());
  if (label == nullptr || label->role() != proto::ColumnConfig::LABEL) {
    return ConfigLocation::Invalid(
        at.At("label_column"),
        absl::StrCat("task '", task.name(), "': label_column '", task.label_column(),
                     "' is not a LABEL column of the dataset config"));
  }
  const bool multiclass = task.head() == proto::TaskConfig::MULTICLASS;
  if (multiclass ? task.num_classes() < 2 : task.num_classes() != 0) {
    return ConfigLocation::Invalid(
        at.At("num_classes"),
        absl::StrCat("task '", task.name(), "': num_classes must be ",
                     multiclass ? ">= 2 for MULTICLASS" : "unset unless MULTICLASS"));
  }
  if (task.has_loss_weight() && !(task.loss_weight() >= 0)) {
    return ConfigLocation::Invalid(
        at.At("loss_weight"), absl::StrCat("task '", task.name(), "': loss_weight must be >= 0"));
  }
  for (int i = 0; i < task.hidden_sizes_size(); ++i) {
    if (task.hidden_sizes(i) < 1) {
      return ConfigLocation::Invalid(
          at.At("hidden_sizes", i),
          absl::StrCat("task '", task.name(), "': layer widths must be >= 1"));
    }
  }
  // A rate of 1 would drop every unit (and scale by 1 / 0); NaN is refused too.
  if (!(task.dropout() >= 0 && task.dropout() < 1)) {
    return ConfigLocation::Invalid(
        at.At("dropout"),
        absl::StrCat("task '", task.name(), "': dropout must be in [0, 1), not ", task.dropout()));
  }
  if (task.dropout() > 0 && task.hidden_sizes().empty()) {
    return ConfigLocation::Invalid(
        at.At("dropout"),
        absl::StrCat("task '", task.name(), "': dropout acts on hidden layers; set hidden_sizes"));
  }
  return absl::OkStatus();
}

// --- Retrieval architectures: errors name the field as "model.<arch>.<field>". ---

absl::Status ValidateTower(const proto::TowerConfig& tower, const std::string& where,
                           const proto::DatasetConfig& dataset) {
  if (tower.fields().empty())
    return ConfigLocation::Invalid(where + ".fields", "a tower needs >= 1 field");
  for (int i = 0; i < tower.fields_size(); ++i) {
    absl::StatusOr<const proto::ColumnConfig*> column =
        ColumnFor(dataset, tower.fields(i), ColumnUse::kPooled);
    if (!column.ok()) {
      return ConfigLocation::Invalid(absl::StrCat(where, ".fields[", i, "]"),
                                     std::string(column.status().message()));
    }
  }
  if (tower.mlp().empty())
    return ConfigLocation::Invalid(where + ".mlp", "a tower needs >= 1 layer");
  for (int i = 0; i < tower.mlp_size(); ++i) {
    if (tower.mlp(i) < 1) {
      return ConfigLocation::Invalid(absl::StrCat(where, ".mlp[", i, "]"), "width must be >= 1");
    }
  }
  // TaskConfig.dropout's range and rule: dropout acts after hidden layers, and a tower's only
  // layer is its output, which is never dropped.
  if (!(tower.dropout() >= 0 && tower.dropout() < 1)) {
    return ConfigLocation::Invalid(
        where + ".dropout", absl::StrCat("dropout must be in [0, 1), not ", tower.dropout()));
  }
  if (tower.dropout() > 0 && tower.mlp_size() < 2) {
    return ConfigLocation::Invalid(
        where + ".dropout",
        "dropout acts on hidden layers (every mlp layer but the last); give mlp >= 2 layers");
  }
  return absl::OkStatus();
}

// The parts every retrieval architecture shares: the task, the id columns, the temperature,
// the towers.
absl::Status ValidateRetrievalColumns(const proto::ModelConfig& model,
                                      const proto::RetrievalConfig& retrieval,
                                      const std::string& where,
                                      const proto::DatasetConfig& dataset) {
  if (model.tasks_size() != 1 || model.tasks(0).head() != proto::TaskConfig::BINARY) {
    return ConfigLocation::Invalid("model.tasks",
                                   absl::StrCat(where,
                                                " needs exactly one BINARY task (the "
                                                "label that marks positives)"));
  }
  for (const auto& [name, column] :
       {std::pair<std::string, std::string>{"user_id_column", retrieval.user_id_column()},
        {"item_id_column", retrieval.item_id_column()}}) {
    const proto::ColumnConfig* config = FindDatasetColumn(dataset, column);
    if (config == nullptr || config->role() != proto::ColumnConfig::CATEGORICAL) {
      return ConfigLocation::Invalid(
          absl::StrCat(where, ".retrieval.", name),
          absl::StrCat("'", column, "' is not a CATEGORICAL column of the dataset"));
    }
  }
  if (retrieval.has_temperature() && !(retrieval.temperature() > 0)) {
    return ConfigLocation::Invalid(where + ".retrieval.temperature", "must be > 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateRetrievalParts(const proto::ModelConfig& model,
                                    const proto::RetrievalConfig& retrieval,
                                    const proto::TowerConfig& user, const proto::TowerConfig& item,
                                    const std::string& where, const proto::DatasetConfig& dataset) {
  absl::Status status = ValidateRetrievalColumns(model, retrieval, where, dataset);
  if (status.ok()) status = ValidateTower(user, where + ".user_tower", dataset);
  if (status.ok()) status = ValidateTower(item, where + ".item_tower", dataset);
  if (!status.ok()) return status;
  if (user.mlp(user.mlp_size() - 1) != item.mlp(item.mlp_size() - 1)) {
    return ConfigLocation::Invalid(
        where, absl::StrCat("the user tower ends at width ", user.mlp(user.mlp_size() - 1),
                            ", the item tower at ", item.mlp(item.mlp_size() - 1)));
  }
  return absl::OkStatus();
}

absl::Status ValidateTwoTowerOrDat(const proto::ModelConfig& model,
                                   const proto::DatasetConfig& dataset) {
  const bool dat = model.has_dat();
  const std::string where = dat ? "model.dat.towers" : "model.two_tower";
  const proto::TwoTowerConfig& towers = dat ? model.dat().towers() : model.two_tower();
  absl::Status status = ValidateRetrievalParts(model, towers.retrieval(), towers.user_tower(),
                                               towers.item_tower(), where, dataset);
  if (!status.ok()) return status;
  if (towers.loss() == proto::TwoTowerConfig::LOSS_UNSPECIFIED) {
    return ConfigLocation::Invalid(where + ".loss", "say IN_BATCH_SOFTMAX or RANDOM_NEGATIVE_BCE");
  }
  if (towers.has_frequency_learning_rate() &&
      !(towers.frequency_learning_rate() > 0 && towers.frequency_learning_rate() <= 1)) {
    return ConfigLocation::Invalid(where + ".frequency_learning_rate", "must be in (0, 1]");
  }
  if (!dat) return absl::OkStatus();
  const proto::DatConfig& config = model.dat();
  const uint32_t width = towers.user_tower().mlp(towers.user_tower().mlp_size() - 1);
  if (width != model.embedding_dim()) {
    return ConfigLocation::Invalid(
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
    if (!weight) return ConfigLocation::Invalid("model.dat." + name, "must be >= 0");
  }
  if (!config.category_column().empty()) {
    absl::StatusOr<const proto::ColumnConfig*> column =
        ColumnFor(dataset, config.category_column(), ColumnUse::kCategorical);
    if (!column.ok()) {
      return ConfigLocation::Invalid("model.dat.category_column",
                                     std::string(column.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAtnn(const proto::ModelConfig& model, const proto::DatasetConfig& dataset) {
  const proto::AtnnConfig& atnn = model.atnn();
  absl::Status status = ValidateRetrievalParts(model, atnn.retrieval(), atnn.user_tower(),
                                               atnn.item_tower(), "model.atnn", dataset);
  if (!status.ok()) return status;
  if (atnn.statistics_columns().empty()) {
    return ConfigLocation::Invalid("model.atnn.statistics_columns",
                                   "the item encoder needs >= 1 column");
  }
  for (int i = 0; i < atnn.statistics_columns_size(); ++i) {
    absl::StatusOr<const proto::ColumnConfig*> column =
        ColumnFor(dataset, atnn.statistics_columns(i), ColumnUse::kNumeric);
    if (!column.ok()) {
      return ConfigLocation::Invalid(absl::StrCat("model.atnn.statistics_columns[", i, "]"),
                                     std::string(column.status().message()));
    }
  }
  if (atnn.has_similarity_weight() && !(atnn.similarity_weight() >= 0)) {
    return ConfigLocation::Invalid("model.atnn.similarity_weight", "must be >= 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateMind(const proto::ModelConfig& model, const proto::DatasetConfig& dataset) {
  const proto::MindConfig& mind = model.mind();
  absl::Status status = ValidateRetrievalParts(model, mind.retrieval(), mind.user_tower(),
                                               mind.item_tower(), "model.mind", dataset);
  if (!status.ok()) return status;
  absl::StatusOr<const proto::ColumnConfig*> behavior =
      ColumnFor(dataset, mind.behavior_column(), ColumnUse::kSequence);
  if (!behavior.ok()) {
    return ConfigLocation::Invalid("model.mind.behavior_column",
                                   std::string(behavior.status().message()));
  }
  bool has_categorical_step = false;
  for (const proto::StepFieldConfig& step : (*behavior)->step_fields()) {
    has_categorical_step |= step.kind() != proto::StepFieldConfig::NUMERIC;
  }
  if (!has_categorical_step) {
    return ConfigLocation::Invalid(
        "model.mind.behavior_column",
        absl::StrCat("'", mind.behavior_column(),
                     "' has no CATEGORICAL step field to embed the behaviours from"));
  }
  if (mind.num_interests() > kMaxNumInterests) {
    return ConfigLocation::Invalid(
        "model.mind.num_interests",
        absl::StrCat(mind.num_interests(), " is more than the ", kMaxNumInterests, " allowed"));
  }
  if (mind.routing_iterations() > kMaxRoutingIterations) {
    return ConfigLocation::Invalid("model.mind.routing_iterations",
                                   absl::StrCat(mind.routing_iterations(), " is more than the ",
                                                kMaxRoutingIterations, " allowed"));
  }
  if (mind.has_attention_power() && !(mind.attention_power() >= 1)) {
    return ConfigLocation::Invalid("model.mind.attention_power",
                                   "must be >= 1 (below 1 its slope is unbounded at 0)");
  }
  if (mind.has_frequency_learning_rate() &&
      !(mind.frequency_learning_rate() > 0 && mind.frequency_learning_rate() <= 1)) {
    return ConfigLocation::Invalid("model.mind.frequency_learning_rate", "must be in (0, 1]");
  }
  return absl::OkStatus();
}

absl::Status ValidateRalmUser(const proto::ModelConfig& model,
                              const proto::DatasetConfig& dataset) {
  const proto::RalmUserConfig& ralm = model.ralm_user();
  const std::string where = "model.ralm_user";
  absl::Status status = ValidateRetrievalColumns(model, ralm.retrieval(), where, dataset);
  if (!status.ok()) return status;
  if (ralm.user_fields().empty() && ralm.numeric_fields().empty()) {
    return ConfigLocation::Invalid(where + ".user_fields",
                                   "no user field: give >= 1 user_fields or numeric_fields");
  }
  for (int i = 0; i < ralm.user_fields_size(); ++i) {
    absl::StatusOr<const proto::ColumnConfig*> column =
        ColumnFor(dataset, ralm.user_fields(i), ColumnUse::kPooled);
    if (!column.ok()) {
      return ConfigLocation::Invalid(absl::StrCat(where, ".user_fields[", i, "]"),
                                     std::string(column.status().message()));
    }
  }
  for (int i = 0; i < ralm.numeric_fields_size(); ++i) {
    absl::StatusOr<const proto::ColumnConfig*> column =
        ColumnFor(dataset, ralm.numeric_fields(i), ColumnUse::kNumeric);
    if (!column.ok()) {
      return ConfigLocation::Invalid(absl::StrCat(where, ".numeric_fields[", i, "]"),
                                     std::string(column.status().message()));
    }
    // RALM reads numeric fields in [0, 1]; an unbounded count would set the merge's scale.
    if (!(*column)->transform().has_min()) {
      return ConfigLocation::Invalid(
          absl::StrCat(where, ".numeric_fields[", i, "]"),
          absl::StrCat("column '", ralm.numeric_fields(i),
                       "' has no min-max range: set transform { min: .. max: .. } on it in the "
                       "dataset config"));
    }
  }
  if (ralm.attention_hidden() > kMaxRalmAttentionHidden) {
    return ConfigLocation::Invalid(where + ".attention_hidden",
                                   absl::StrCat(ralm.attention_hidden(), " is more than the ",
                                                kMaxRalmAttentionHidden, " allowed"));
  }
  if (ralm.user_mlp().empty()) {
    return ConfigLocation::Invalid(where + ".user_mlp", "the user MLP needs >= 1 layer");
  }
  for (int i = 0; i < ralm.user_mlp_size(); ++i) {
    if (ralm.user_mlp(i) < 1) {
      return ConfigLocation::Invalid(absl::StrCat(where, ".user_mlp[", i, "]"),
                                     "width must be >= 1");
    }
  }
  status = ValidateTower(ralm.item_tower(), where + ".item_tower", dataset);
  if (!status.ok()) return status;
  const proto::TowerConfig& item = ralm.item_tower();
  if (ralm.user_mlp(ralm.user_mlp_size() - 1) != item.mlp(item.mlp_size() - 1)) {
    return ConfigLocation::Invalid(
        where, absl::StrCat("the user MLP ends at width ", ralm.user_mlp(ralm.user_mlp_size() - 1),
                            ", the item tower at ", item.mlp(item.mlp_size() - 1)));
  }
  if (ralm.has_frequency_learning_rate() &&
      !(ralm.frequency_learning_rate() > 0 && ralm.frequency_learning_rate() <= 1)) {
    return ConfigLocation::Invalid(where + ".frequency_learning_rate", "must be in (0, 1]");
  }
  return absl::OkStatus();
}

void FillRetrievalDefaults(proto::RetrievalConfig* retrieval) {
  if (!retrieval->has_temperature()) retrieval->set_temperature(kDefaultTemperature);
}

void FillTwoTowerDefaults(proto::TwoTowerConfig* towers) {
  FillRetrievalDefaults(towers->mutable_retrieval());
  const FrequencyEstimatorOptions estimator;
  if (towers->frequency_buckets() == 0) {
    towers->set_frequency_buckets(static_cast<uint32_t>(estimator.num_buckets));
  }
  if (!towers->has_frequency_learning_rate()) {
    towers->set_frequency_learning_rate(estimator.learning_rate);
  }
  if (towers->num_negatives() == 0) towers->set_num_negatives(kDefaultNumNegatives);
  if (towers->negative_seed() == 0) towers->set_negative_seed(kDefaultNegativeSeed);
}

void FillEsmmDefaults(proto::ModelConfig* model) {
  proto::EsmmConfig* esmm = model->mutable_esmm();
  if (esmm->ctcvr_task().empty()) esmm->set_ctcvr_task(kDefaultCtcvrTask);
  if (!esmm->has_ctcvr_loss_weight()) esmm->set_ctcvr_loss_weight(kDefaultCtcvrLossWeight);
  for (proto::TaskConfig& task : *model->mutable_tasks()) {
    if (task.name() == esmm->cvr_task() && !task.has_loss_weight()) {
      task.set_loss_weight(kDefaultEsmmCvrLossWeight);
    }
  }
}

}  // namespace

const proto::ColumnConfig* FindDatasetColumn(const proto::DatasetConfig& dataset,
                                             const std::string& name) {
  for (const proto::ColumnConfig& column : dataset.columns()) {
    if (column.name() == name) return &column;
  }
  return nullptr;
}

absl::StatusOr<const proto::ColumnConfig*> ColumnFor(const proto::DatasetConfig& dataset,
                                                     const std::string& name, ColumnUse use) {
  const proto::ColumnConfig* column = FindDatasetColumn(dataset, name);
  if (column == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no column '", name, "' in the dataset config"));
  }
  if (!Admits(use, *column)) {
    return absl::InvalidArgumentError(absl::StrCat("column '", name, "' is not ", RolesOf(use)));
  }
  return column;
}

absl::Status ValidateModelConfig(const proto::ModelConfig& model,
                                 const proto::DatasetConfig& dataset, const ConfigLocation& at) {
  if (model.embedding_dim() < 1) {
    return ConfigLocation::Invalid(at.At("embedding_dim"), "embedding_dim must be >= 1");
  }
  absl::Status status;
  switch (model.architecture_case()) {
    case proto::ModelConfig::kDupn:
      status = ValidateDupn(model.dupn(), at.Nested(model.dupn(), "dupn"), dataset);
      break;
    case proto::ModelConfig::kSharedBottom:
      status = ValidateSharedBottom(model.shared_bottom(),
                                    at.Nested(model.shared_bottom(), "shared_bottom"), dataset);
      break;
    case proto::ModelConfig::kMmoe:
      status = ValidateMmoe(model.mmoe(), at.Nested(model.mmoe(), "mmoe"), dataset);
      break;
    case proto::ModelConfig::kAutoint:
      status = ValidateAutoInt(model.autoint(), at.Nested(model.autoint(), "autoint"), dataset);
      break;
    case proto::ModelConfig::kEsmm:
      status = ValidateEsmm(model, at.Nested(model.esmm(), "esmm"), dataset);
      break;
    case proto::ModelConfig::kTwoTower:
    case proto::ModelConfig::kDat:
    case proto::ModelConfig::kAtnn:
    case proto::ModelConfig::kMind:
    case proto::ModelConfig::kRalmUser:
      status = ValidateRetrievalModel(model, dataset);
      if (!status.ok()) {
        const std::string architecture =
            model.GetDescriptor()->FindFieldByNumber(model.architecture_case())->name();
        status = ConfigLocation::Invalid(at.At(architecture), std::string(status.message()));
      }
      break;
    default:
      return ConfigLocation::Invalid(at.Here(),
                                     "model has no architecture (dupn, shared_bottom, mmoe, "
                                     "autoint, esmm, two_tower, dat, atnn or mind)");
  }
  if (!status.ok()) return status;
  if (model.tasks().empty()) return ConfigLocation::Invalid(at.Here(), "model has no tasks");
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < model.tasks_size(); ++i) {
    const proto::TaskConfig& task = model.tasks(i);
    if (task.name().empty() || !names.insert(task.name()).second) {
      return ConfigLocation::Invalid(
          at.At("tasks", i), absl::StrCat("task name '", task.name(), "' is empty or repeated"));
    }
    status = ValidateTask(task, at.Nested(task, "tasks", i), dataset);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status ValidateRetrievalModel(const proto::ModelConfig& model,
                                    const proto::DatasetConfig& dataset) {
  switch (model.architecture_case()) {
    case proto::ModelConfig::kTwoTower:
    case proto::ModelConfig::kDat:
      return ValidateTwoTowerOrDat(model, dataset);
    case proto::ModelConfig::kAtnn:
      return ValidateAtnn(model, dataset);
    case proto::ModelConfig::kMind:
      return ValidateMind(model, dataset);
    case proto::ModelConfig::kRalmUser:
      return ValidateRalmUser(model, dataset);
    default:
      return absl::OkStatus();
  }
}

void FillModelDefaults(proto::ModelConfig* model) {
  if (model->sparse_table().empty()) model->set_sparse_table(kDefaultSparseTable);
  if (model->dense_table().empty()) model->set_dense_table(kDefaultDenseTable);
  // Before the tasks' default weight, which ESMM's CVR task does not take.
  if (model->has_esmm()) FillEsmmDefaults(model);
  for (proto::TaskConfig& task : *model->mutable_tasks()) {
    if (!task.has_loss_weight()) task.set_loss_weight(kDefaultLossWeight);
  }
  // mutable_<architecture>() of another architecture would switch the oneof: only the set one.
  switch (model->architecture_case()) {
    case proto::ModelConfig::kTwoTower:
      FillTwoTowerDefaults(model->mutable_two_tower());
      break;
    case proto::ModelConfig::kDat: {
      proto::DatConfig* dat = model->mutable_dat();
      FillTwoTowerDefaults(dat->mutable_towers());
      if (!dat->has_amm_user_weight()) dat->set_amm_user_weight(kDefaultAmmWeight);
      if (!dat->has_amm_item_weight()) dat->set_amm_item_weight(kDefaultAmmWeight);
      if (!dat->has_category_alignment_weight()) {
        dat->set_category_alignment_weight(kDefaultCategoryAlignmentWeight);
      }
      break;
    }
    case proto::ModelConfig::kAtnn: {
      proto::AtnnConfig* atnn = model->mutable_atnn();
      FillRetrievalDefaults(atnn->mutable_retrieval());
      if (!atnn->has_similarity_weight()) atnn->set_similarity_weight(kDefaultSimilarityWeight);
      break;
    }
    case proto::ModelConfig::kMind: {
      proto::MindConfig* mind = model->mutable_mind();
      FillRetrievalDefaults(mind->mutable_retrieval());
      // 0 means unset for the counts: a config that asks for 0 interests gets the default.
      if (mind->num_interests() == 0) mind->set_num_interests(kDefaultNumInterests);
      if (mind->routing_iterations() == 0) mind->set_routing_iterations(kDefaultRoutingIterations);
      if (!mind->has_attention_power()) mind->set_attention_power(kDefaultAttentionPower);
      if (!mind->has_adaptive_interest_count()) mind->set_adaptive_interest_count(true);
      const FrequencyEstimatorOptions estimator;
      if (mind->frequency_buckets() == 0) {
        mind->set_frequency_buckets(static_cast<uint32_t>(estimator.num_buckets));
      }
      if (!mind->has_frequency_learning_rate()) {
        mind->set_frequency_learning_rate(estimator.learning_rate);
      }
      break;
    }
    case proto::ModelConfig::kRalmUser: {
      proto::RalmUserConfig* ralm = model->mutable_ralm_user();
      FillRetrievalDefaults(ralm->mutable_retrieval());
      if (ralm->attention_hidden() == 0) ralm->set_attention_hidden(kDefaultRalmAttentionHidden);
      const FrequencyEstimatorOptions estimator;
      if (ralm->frequency_buckets() == 0) {
        ralm->set_frequency_buckets(static_cast<uint32_t>(estimator.num_buckets));
      }
      if (!ralm->has_frequency_learning_rate()) {
        ralm->set_frequency_learning_rate(estimator.learning_rate);
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace granary
