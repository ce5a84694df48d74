#include "worker/models/retrieval_model.h"

#include "glog/logging.h"

namespace granary {
namespace {

// The values of `column`'s keys for the batch, or InvalidArgument.
absl::Status PrepareIds(const Batch& batch, const std::string& column, std::vector<uint64_t>* ids,
                        std::vector<uint8_t>* present) {
  absl::StatusOr<const CategoricalColumn*> found =
      ColumnNamed(batch.categoricals, column, "CATEGORICAL");
  if (!found.ok()) return found.status();
  *ids = (*found)->keys;
  *present = (*found)->present;
  return absl::OkStatus();
}

}  // namespace

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

RetrievalModel::RetrievalModel(const proto::ModelConfig& model,
                               const proto::RetrievalConfig& retrieval)
    : dim_(static_cast<int>(model.embedding_dim())),
      temperature_(retrieval.temperature()),
      tasks_(model.tasks().begin(), model.tasks().end()) {}

const nn::Matrix& RetrievalModel::output(int task) const {
  DCHECK_EQ(task, 0);
  return logits_;
}

void RetrievalModel::ScorePairs(const nn::Matrix& users, const nn::Matrix& items) {
  logits_.resize(users.rows(), 1);
  logits_.col(0) = (users.array() * items.array()).rowwise().sum().matrix() / temperature_;
}

}  // namespace granary
