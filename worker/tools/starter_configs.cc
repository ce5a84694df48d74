#include "worker/tools/starter_configs.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace granary {
namespace {

// Words of a column name that make it describe the item, not the user.
constexpr const char* kItemWords[] = {"item",  "product", "movie", "ad",    "goods", "sku",
                                      "video", "song",    "track", "offer", "doc"};
constexpr char kSparseTable[] = "emb";
constexpr char kDenseTable[] = "dense";
constexpr uint64_t kStarterSeed = 1;
constexpr uint64_t kStarterInitializerSeed = 7;

bool IsEmbedded(proto::ColumnConfig::Role role) {
  return role == proto::ColumnConfig::CATEGORICAL || role == proto::ColumnConfig::MULTI_CATEGORICAL;
}

bool HasCategoricalStep(const proto::ColumnConfig& column) {
  for (const proto::StepFieldConfig& step : column.step_fields()) {
    if (step.kind() == proto::StepFieldConfig::CATEGORICAL) return true;
  }
  return false;
}

void AddAdamTable(const std::string& name, uint32_t dim, float learning_rate,
                  const proto::InitializerConfig& initializer, proto::ClusterConfig* cluster) {
  proto::TableConfig* table = cluster->add_tables();
  table->set_name(name);
  table->set_dim(dim);
  *table->mutable_initializer() = initializer;
  table->mutable_optimizer()->mutable_adam()->set_learning_rate(learning_rate);
}

}  // namespace

absl::StatusOr<StarterConfigs> MakeStarterConfigs(const DatasetGuess& guess,
                                                  const StarterOptions& options) {
  if (guess.tasks.empty()) {
    return absl::InvalidArgumentError(
        "no column looks like a label (0/1 or class ids, named like click, purchase, label, "
        "target, rating); name the label columns with --labels");
  }
  StarterConfigs starter;
  proto::JobConfig& job = starter.job;
  job.set_dataset_config(options.dataset_config);
  proto::ModelConfig& model = *job.mutable_model();
  model.set_embedding_dim(kStarterEmbeddingDim);
  model.set_sparse_table(kSparseTable);
  model.set_dense_table(kDenseTable);

  std::vector<std::string> embedded, numeric, user_fields, item_fields;
  const proto::ColumnConfig* behavior = nullptr;
  absl::flat_hash_set<std::string> shared_with_steps;
  for (const proto::ColumnConfig& column : guess.dataset.columns()) {
    if (column.role() != proto::ColumnConfig::SEQUENCE || !HasCategoricalStep(column)) continue;
    if (behavior == nullptr) behavior = &column;
    for (const proto::StepFieldConfig& step : column.step_fields()) {
      if (!step.hash_space().empty()) shared_with_steps.insert(step.hash_space());
    }
  }
  for (const proto::ColumnConfig& column : guess.dataset.columns()) {
    const std::string& name = column.name();
    if (column.role() == proto::ColumnConfig::NUMERIC) numeric.push_back(name);
    if (IsEmbedded(column.role())) {
      embedded.push_back(name);
      const bool item =
          shared_with_steps.contains(column.hash_space().empty() ? name : column.hash_space()) ||
          NameHasWord(name, kItemWords);
      (item ? item_fields : user_fields).push_back(name);
    }
    if (column.role() == proto::ColumnConfig::SEQUENCE && HasCategoricalStep(column)) {
      embedded.push_back(name);
    }
  }
  if (embedded.empty()) {
    return absl::InvalidArgumentError(
        "no CATEGORICAL, MULTI_CATEGORICAL or SEQUENCE column to embed");
  }
  if (behavior != nullptr && !user_fields.empty() && !item_fields.empty()) {
    proto::DupnConfig& dupn = *model.mutable_dupn();
    for (const std::string& f : user_fields) dupn.add_user_fields(f);
    for (const std::string& f : item_fields) dupn.add_item_fields(f);
    dupn.set_behavior_column(behavior->name());
    dupn.set_lstm_hidden(kStarterHidden);
    dupn.set_attention_hidden(kStarterHidden);
    dupn.add_user_mlp(kStarterUserMlp);
    for (const std::string& f : numeric) dupn.add_numeric_fields(f);
    starter.reasons.push_back(absl::StrCat("model: dupn over the behaviour sequence '",
                                           behavior->name(), "'; item fields ",
                                           absl::StrJoin(item_fields, ", "),
                                           " (sharing keys with a step field or named like an "
                                           "item); user fields ",
                                           absl::StrJoin(user_fields, ", ")));
  } else {
    proto::SharedBottomConfig& bottom = *model.mutable_shared_bottom();
    for (const std::string& f : embedded) bottom.add_fields(f);
    bottom.add_bottom_mlp(kStarterBottomMlp0);
    bottom.add_bottom_mlp(kStarterBottomMlp1);
    for (const std::string& f : numeric) bottom.add_numeric_fields(f);
    starter.reasons.push_back(
        absl::StrCat("model: shared_bottom over ", absl::StrJoin(embedded, ", "),
                     behavior == nullptr ? " (no sequence with a categorical step field for dupn)"
                                         : " (dupn needs both user and item fields)"));
  }
  if (!numeric.empty()) {
    starter.reasons.push_back(absl::StrCat("numeric fields: ", absl::StrJoin(numeric, ", ")));
  }
  for (const TaskGuess& guessed : guess.tasks) {
    proto::TaskConfig& task = *model.add_tasks();
    task.set_name(guessed.label_column);
    task.set_head(guessed.head);
    task.set_label_column(guessed.label_column);
    if (guessed.head == proto::TaskConfig::MULTICLASS) task.set_num_classes(guessed.num_classes);
    task.add_hidden_sizes(kStarterHidden);
  }
  proto::TrainingConfig& training = *job.mutable_training();
  training.set_batch_size(kStarterBatchSize);
  training.set_epochs(kStarterEpochs);
  training.set_seed(kStarterSeed);
  training.add_train_files(options.train_files);
  training.add_eval_files(options.eval_files);

  proto::InitializerConfig normal;
  normal.set_kind(proto::InitializerConfig::NORMAL);
  normal.set_scale(kStarterEmbeddingInitScale);
  normal.set_seed(kStarterInitializerSeed);
  AddAdamTable(kSparseTable, kStarterEmbeddingDim, kStarterSparseLearningRate, normal,
               &starter.cluster);
  proto::InitializerConfig zeros;
  zeros.set_kind(proto::InitializerConfig::ZEROS);
  AddAdamTable(kDenseTable, kStarterDenseBlock, kStarterDenseLearningRate, zeros, &starter.cluster);
  starter.reasons.push_back(absl::StrCat("cluster: Adam (learning rate ",
                                         kStarterSparseLearningRate, ") on the embeddings and ",
                                         kStarterDenseLearningRate,
                                         " on the dense weights, the best start on unseen data "
                                         "(docs/models.md, \"A new dataset\")"));
  return starter;
}

}  // namespace granary
