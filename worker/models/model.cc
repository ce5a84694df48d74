#include "worker/models/model.h"

#include "absl/strings/str_cat.h"

namespace granary {

void ModelInput::StartBatch(int size) {
  batch_size = size;
  keys.clear();
  row_of_key_.clear();
}

int32_t ModelInput::RowOf(uint64_t key) {
  auto [it, inserted] = row_of_key_.try_emplace(key, static_cast<int32_t>(keys.size()));
  if (inserted) keys.push_back(key);
  return it->second;
}

absl::Status PrepareTaskLabels(const Batch& batch, const std::vector<proto::TaskConfig>& tasks,
                               ModelInput* input) {
  const int n = batch.size;
  input->labels.resize(tasks.size());
  input->has_label.resize(tasks.size());
  input->classes.resize(tasks.size());
  for (size_t k = 0; k < tasks.size(); ++k) {
    const proto::TaskConfig& task = tasks[k];
    absl::StatusOr<const FloatColumn*> label =
        ColumnNamed(batch.labels, task.label_column(), "LABEL");
    if (!label.ok()) return label.status();
    input->labels[k] = (*label)->values;
    input->has_label[k] = (*label)->present;
    if (task.head() != proto::TaskConfig::MULTICLASS) continue;
    input->classes[k].resize(n);
    for (int b = 0; b < n; ++b) {
      const float value = input->labels[k][b];
      const int32_t id = static_cast<int32_t>(value);
      if (input->has_label[k][b] &&
          (id != value || id < 0 || id >= static_cast<int32_t>(task.num_classes()))) {
        return absl::InvalidArgumentError(absl::StrCat("task '", task.name(), "': label ", value,
                                                       " is not a class id in [0, ",
                                                       task.num_classes(), ")"));
      }
      input->classes[k][b] = input->has_label[k][b] ? id : 0;
    }
  }
  return absl::OkStatus();
}

}  // namespace granary
