// MultiTaskModel: what the multi-task architectures (DUPN, shared bottom, MMoE) share: the
// job's tasks, one TaskHead per task over a representation the architecture computes, and the
// dense parameters in which the architecture's layers and the heads live. An architecture
// derives from it, adds its layers to params_ in its constructor, then calls AddHeads with the
// width of what the heads read, so the flat layout is: its layers, then the heads in task
// order.
//
// Not thread-safe (as Model).
#ifndef GRANARY_WORKER_MODELS_MULTI_TASK_MODEL_H_
#define GRANARY_WORKER_MODELS_MULTI_TASK_MODEL_H_

#include <memory>
#include <vector>

#include "common/proto/job.pb.h"
#include "worker/models/model.h"
#include "worker/models/task_head.h"
#include "worker/nn/loss.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

class MultiTaskModel : public Model {
 public:
  const nn::Matrix& output(int task) const override { return heads_[task]->output(); }
  nn::ParameterSet& params() override { return params_; }
  int embedding_dim() const override { return dim_; }
  const std::vector<proto::TaskConfig>& tasks() const override { return tasks_; }

 protected:
  explicit MultiTaskModel(const proto::ModelConfig& model);

  // Adds one TaskHead per task, reading inputs of width `input_dim`, to params_.
  void AddHeads(int input_dim);
  // Backward's start: zeroes the dense gradients and sizes *losses to the tasks.
  void StartBackward(std::vector<nn::LossValue>* losses);
  // StartBackward, then every head's Backward (task k's loss into (*losses)[k]); writes the sum
  // of the heads' input gradients into *d_heads_input [B, AddHeads' input_dim].
  void HeadsBackward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                     nn::Matrix* d_heads_input);

  const int dim_;
  const std::vector<proto::TaskConfig> tasks_;
  nn::ParameterSet params_;  // before the layers of the derived class, which point into it
  std::vector<std::unique_ptr<TaskHead>> heads_;

 private:
  int heads_input_dim_ = 0;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_MULTI_TASK_MODEL_H_
