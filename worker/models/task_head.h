// TaskHead: one task's tower on top of a model's shared representation: the task's hidden
// ReLU layers (TaskConfig.hidden_sizes, each followed in training by a Dropout of
// TaskConfig.dropout when that is > 0), an output layer of the head's width, and the loss of
// the head's kind (BINARY: sigmoid cross-entropy, MULTICLASS: softmax cross-entropy,
// REGRESSION: squared error) over the samples that have the task's label.
//
// Parameters are named "task.<task name>.<i>" (hidden layers) and "task.<task name>.out".
//
// Not thread-safe: the layers keep activations; one thread at a time.
#ifndef GRANARY_WORKER_MODELS_TASK_HEAD_H_
#define GRANARY_WORKER_MODELS_TASK_HEAD_H_

#include "common/proto/job.pb.h"
#include "worker/models/model.h"
#include "worker/nn/dense.h"
#include "worker/nn/loss.h"
#include "worker/nn/mlp.h"
#include "worker/nn/parameter_set.h"
#include "worker/nn/tensor.h"

namespace granary {

class TaskHead {
 public:
  // Adds the head's layers over inputs of width `input_dim` to *params, which must outlive
  // the head. REQUIRES: `task` is valid (ValidateModelConfig) with its defaults
  // filled (FillModelDefaults).
  TaskHead(nn::ParameterSet* params, const proto::TaskConfig& task, int input_dim);
  TaskHead(const TaskHead&) = delete;
  TaskHead& operator=(const TaskHead&) = delete;

  // Returns the head's output (see Model::output), valid until the next Forward.
  // REQUIRES: `input` stays alive and unchanged until Backward returns.
  const nn::Matrix& Forward(const nn::Matrix& input);
  // The output of the last Forward.
  const nn::Matrix& output() const { return *output_; }

  // Computes the loss of task `task_index` of `input` (its labels) over the last Forward's
  // output into *loss, adds the parameter gradients of loss_weight * loss->mean() and returns
  // its gradient w.r.t. the head's input, valid until the next Backward.
  const nn::Matrix& Backward(const ModelInput& input, int task_index, nn::LossValue* loss);
  // For a loss the caller computes over this head's output (e.g. one over several heads'
  // outputs): adds the parameter gradients for the gradient `d_output` of that loss w.r.t.
  // the last Forward's output (loss weight included) and returns the gradient w.r.t. the
  // head's input, valid until the next Backward.
  const nn::Matrix& BackwardFromOutput(const nn::Matrix& d_output);

 private:
  const proto::TaskConfig task_;
  nn::Mlp hidden_;
  nn::Dense out_;
  const nn::Matrix* output_ = nullptr;
  nn::Matrix d_output_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_TASK_HEAD_H_
