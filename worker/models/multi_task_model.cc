#include "worker/models/multi_task_model.h"

namespace granary {

MultiTaskModel::MultiTaskModel(const proto::ModelConfig& model)
    : dim_(static_cast<int>(model.embedding_dim())),
      tasks_(model.tasks().begin(), model.tasks().end()) {}

void MultiTaskModel::AddHeads(int input_dim) {
  heads_input_dim_ = input_dim;
  for (const proto::TaskConfig& task : tasks_) {
    heads_.push_back(std::make_unique<TaskHead>(&params_, task, input_dim));
  }
}

void MultiTaskModel::StartBackward(std::vector<nn::LossValue>* losses) {
  params_.ZeroGrads();
  losses->resize(tasks_.size());
}

void MultiTaskModel::HeadsBackward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                                   nn::Matrix* d_heads_input) {
  StartBackward(losses);
  d_heads_input->setZero(input.batch_size, heads_input_dim_);
  for (size_t k = 0; k < heads_.size(); ++k) {
    *d_heads_input += heads_[k]->Backward(input, static_cast<int>(k), &(*losses)[k]);
  }
}

}  // namespace granary
