#include "worker/task_head.h"

#include "absl/strings/str_cat.h"

namespace granary {
namespace {

int OutputWidth(const proto::TaskConfig& task) {
  return task.head() == proto::TaskConfig::MULTICLASS ? static_cast<int>(task.num_classes()) : 1;
}

}  // namespace

TaskHead::TaskHead(model::ParameterSet* params, const proto::TaskConfig& task, int input_dim)
    : task_(task),
      hidden_(params, absl::StrCat("task.", task.name()), input_dim, task.hidden_sizes()),
      out_(params, absl::StrCat("task.", task.name(), ".out"), hidden_.output_dim(),
           OutputWidth(task)) {}

const model::Matrix& TaskHead::Forward(const model::Matrix& input) {
  output_ = &out_.Forward(hidden_.Forward(input));
  return *output_;
}

const model::Matrix& TaskHead::Backward(const ModelInput& input, int task_index,
                                        model::LossValue* loss) {
  const model::SampleWeighting weighting{{}, input.has_label[task_index]};
  switch (task_.head()) {
    case proto::TaskConfig::MULTICLASS:
      *loss =
          model::SoftmaxCrossEntropy(*output_, input.classes[task_index], weighting, &d_output_);
      break;
    case proto::TaskConfig::REGRESSION:
      *loss = model::MeanSquaredError(*output_, input.labels[task_index], weighting, &d_output_);
      break;
    default:
      *loss = model::SigmoidBinaryCrossEntropy(*output_, input.labels[task_index], weighting,
                                               &d_output_);
      break;
  }
  d_output_ *= task_.loss_weight();
  return hidden_.Backward(out_.Backward(d_output_));
}

}  // namespace granary
