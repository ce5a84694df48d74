// Model: the interface the Trainer trains through, whatever the architecture (DUPN, shared
// bottom, MMoE, ...). A model maps one batch of samples plus the embedding rows pulled for it
// to one output per task, and back from the tasks' losses to gradients of its dense
// parameters and of those rows.
//
// Per batch, on one thread:
//   Prepare(batch, input)    before the pull: fills input->keys, the batch's unique embedding
//                            keys (row i of the pulled matrix is keys[i]), the task labels and
//                            whatever else the architecture reads from the batch;
//   Forward(input, rows)     runs the network on the pulled rows (ForwardOneUser when the
//                            batch is one user's N candidates, as a serving request);
//   Backward(input, ...)     training: every task's loss over the batch, the dense gradients
//                            into params() and the row gradients into d_rows; or
//   output(k)                evaluation: task k's scores of the last Forward.
//
// Embeddings are not parameters of a model: they live on the parameter servers, in the job's
// sparse table. Dense parameters are params(), flattened in a fixed order for the dense table;
// two models built from the same config have the same layout.
//
// A loss may be a sum over samples (pointwise heads) or over the batch as a whole (e.g. an
// in-batch softmax over every pair of users and items of the batch): Backward only promises
// the gradient of the total loss sum_k loss_weight_k * losses[k].mean().
//
// Not thread-safe: a model keeps activations between Forward and Backward. The Trainer gives
// each compute thread its own model built from the same config (a replica). A ModelInput
// belongs to the model that prepared it, or to another built from the same config.
#ifndef GRANARY_WORKER_MODELS_MODEL_H_
#define GRANARY_WORKER_MODELS_MODEL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/proto/job.pb.h"
#include "worker/batch.h"
#include "worker/nn/loss.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

// One batch as a model sees it. Architectures derive from it to add their own per-batch
// arrays (field row ids, sequences, ...). Reusing one input across batches reuses its memory.
struct ModelInput {
  virtual ~ModelInput() = default;

  // Clears the keys for a new batch of `size` samples.
  void StartBatch(int size);
  // The row of `key` among keys: its first-seen index, appending it if new.
  int32_t RowOf(uint64_t key);

  int batch_size = 0;
  // Unique keys of every sparse field of the batch, in first-seen order; row i of the pulled
  // matrix is the embedding of keys[i].
  std::vector<uint64_t> keys;
  // Per task, [batch_size] each: the float label, whether it is present (a sample without a
  // label adds no loss for that task), and for MULTICLASS tasks the class id (0 if absent).
  std::vector<std::vector<float>> labels;
  std::vector<std::vector<uint8_t>> has_label;
  std::vector<std::vector<int32_t>> classes;

 private:
  absl::flat_hash_map<uint64_t, int32_t> row_of_key_;
};

class Model {
 public:
  Model() = default;
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // An empty input of this architecture's type, for Prepare.
  virtual std::unique_ptr<ModelInput> NewInput() const = 0;

  // Fills *input (from NewInput of a model of the same config) from `batch`. InvalidArgument
  // if the batch lacks a configured column (it was read with another dataset config) or a
  // label is invalid for its task, naming the column or task and the value.
  virtual absl::Status Prepare(const Batch& batch, ModelInput* input) const = 0;

  // Runs the network. REQUIRES: `input` was prepared; `rows` is [input.keys.size(),
  // embedding_dim()] and, like `input`, stays alive and unchanged until Backward returns.
  virtual void Forward(const ModelInput& input, nn::ConstMatrixRef rows) = 0;

  // Forward for a batch whose samples share every user-side column (one user, N candidate
  // items), as a serving request is: output(k) afterwards equals Forward's. REQUIRES as
  // Forward, plus every sample's user-side columns equal sample 0's. The default runs Forward.
  // An architecture with a user-only sub-computation overrides it to compute that once per
  // batch; its header says which columns are user-side.
  virtual void ForwardOneUser(const ModelInput& input, nn::ConstMatrixRef rows) {
    Forward(input, rows);
  }

  // Task k's output of the last Forward, one row per sample: BINARY [B, 1] logits, MULTICLASS
  // [B, K] logits, REGRESSION [B, 1] predictions. REQUIRES: Forward ran.
  virtual const nn::Matrix& output(int task) const = 0;

  // Computes every task's loss (*losses[k], resized to tasks().size(), without the task's
  // loss weight) and the gradients of sum_k loss_weight_k * losses[k].mean(): the dense ones
  // into params()' grads (zeroed first) and the embedding rows' into *d_rows
  // [input.keys.size(), embedding_dim()] (resized and zeroed first). REQUIRES: Forward(input)
  // was the last Forward.
  virtual void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                        nn::Matrix* d_rows) = 0;

  // The dense parameters. Zero until params().Initialize(seed).
  virtual nn::ParameterSet& params() = 0;
  virtual int embedding_dim() const = 0;
  // The job's tasks, in config order: output(k) and losses[k] are those of tasks()[k].
  virtual const std::vector<proto::TaskConfig>& tasks() const = 0;
};

// Fills input->labels, has_label and classes for `tasks` from the batch's LABEL columns.
// InvalidArgument if a label column is missing or a MULTICLASS label is not a class id in
// [0, num_classes), naming the task and the value. For Model::Prepare implementations.
absl::Status PrepareTaskLabels(const Batch& batch, const std::vector<proto::TaskConfig>& tasks,
                               ModelInput* input);

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_MODEL_H_
