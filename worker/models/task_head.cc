#include "worker/models/task_head.h"

#include "absl/strings/str_cat.h"

namespace granary {
namespace {

int OutputWidth(const proto::TaskConfig& task) {
  return task.head() == proto::TaskConfig::MULTICLASS ? static_cast<int>(task.num_classes()) : 1;
}

}  // namespace

TaskHead::TaskHead(nn::ParameterSet* params, const proto::TaskConfig& task, int input_dim)
    : task_(task),
      hidden_(params, absl::StrCat("task.", task.name()), input_dim, task.hidden_sizes(),
              task.dropout()),
      out_(params, absl::StrCat("task.", task.name(), ".out"), hidden_.output_dim(),
           OutputWidth(task)) {}

const nn::Matrix& TaskHead::Forward(const nn::Matrix& input) {
  output_ = &out_.Forward(hidden_.Forward(input));
  return *output_;
}

const nn::Matrix& TaskHead::Backward(const ModelInput& input, int task_index, nn::LossValue* loss) {
  const nn::SampleWeighting weighting{{}, input.has_label[task_index]};
  switch (task_.head()) {
    case proto::TaskConfig::MULTICLASS:
      *loss = nn::SoftmaxCrossEntropy(*output_, input.classes[task_index], weighting, &d_output_);
      break;
    case proto::TaskConfig::REGRESSION:
      *loss = nn::MeanSquaredError(*output_, input.labels[task_index], weighting, &d_output_);
      break;
    default:
      *loss =
          nn::SigmoidBinaryCrossEntropy(*output_, input.labels[task_index], weighting, &d_output_);
      break;
  }
  d_output_ *= task_.loss_weight();
  return BackwardFromOutput(d_output_);
}

const nn::Matrix& TaskHead::BackwardFromOutput(const nn::Matrix& d_output) {
  return hidden_.Backward(out_.Backward(d_output));
}

}  // namespace granary
