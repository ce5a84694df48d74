#include "worker/models/esmm_model.h"

#include <utility>

namespace granary {
namespace {

int TaskIndex(const proto::ModelConfig& model, const std::string& name) {
  for (int k = 0; k < model.tasks_size(); ++k) {
    if (model.tasks(k).name() == name) return k;
  }
  return -1;
}

// The job's tasks and the ctcvr task appended to them.
std::vector<proto::TaskConfig> TasksWithCtcvr(const proto::ModelConfig& model) {
  std::vector<proto::TaskConfig> tasks(model.tasks().begin(), model.tasks().end());
  const proto::EsmmConfig& esmm = model.esmm();
  proto::TaskConfig ctcvr;
  ctcvr.set_name(esmm.ctcvr_task());
  ctcvr.set_head(proto::TaskConfig::BINARY);
  // The column the reader checks as a 0/1 label for this task: the conversion, which the
  // ctcvr label is derived from.
  ctcvr.set_label_column(tasks[TaskIndex(model, esmm.cvr_task())].label_column());
  ctcvr.set_loss_weight(esmm.ctcvr_loss_weight());
  tasks.push_back(std::move(ctcvr));
  return tasks;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EsmmModel>> EsmmModel::Create(const proto::ModelConfig& model,
                                                             const proto::DatasetConfig& dataset) {
  if (!model.has_esmm()) return absl::InvalidArgumentError("the model is not an ESMM model");
  const proto::EsmmConfig& esmm = model.esmm();
  if (TaskIndex(model, esmm.ctr_task()) < 0 || TaskIndex(model, esmm.cvr_task()) < 0 ||
      model.tasks_size() != 2) {
    return absl::InvalidArgumentError(
        "esmm: ctr_task and cvr_task must be the job's two tasks (ValidateModelConfig)");
  }
  absl::StatusOr<Inputs> inputs = CreateInputs(esmm.fields(), esmm.numeric_fields(), dataset);
  if (!inputs.ok()) return inputs.status();
  return std::unique_ptr<EsmmModel>(new EsmmModel(model, *std::move(inputs)));
}

EsmmModel::EsmmModel(const proto::ModelConfig& model, Inputs inputs)
    : PooledFieldsModel(model, std::move(inputs)),
      ctr_(TaskIndex(model, model.esmm().ctr_task())),
      cvr_(TaskIndex(model, model.esmm().cvr_task())),
      ctcvr_(model.tasks_size()),
      all_tasks_(TasksWithCtcvr(model)) {
  AddHeads(input_dim());
}

absl::Status EsmmModel::Prepare(const Batch& batch, ModelInput* input) const {
  absl::Status status = PooledFieldsModel::Prepare(batch, input);
  if (!status.ok()) return status;
  const int n = input->batch_size;
  input->labels.resize(all_tasks_.size());
  input->has_label.resize(all_tasks_.size());
  input->classes.resize(all_tasks_.size());
  const std::vector<float>& click = input->labels[ctr_];
  const std::vector<uint8_t>& has_click = input->has_label[ctr_];
  const std::vector<float>& conversion = input->labels[cvr_];
  std::vector<uint8_t>& has_conversion = input->has_label[cvr_];
  std::vector<float>& ctcvr = input->labels[ctcvr_];
  std::vector<uint8_t>& has_ctcvr = input->has_label[ctcvr_];
  ctcvr.assign(n, 0.0f);
  has_ctcvr.assign(n, 0);
  for (int b = 0; b < n; ++b) {
    // Labels of BINARY tasks are 0 or 1 (the reader checks their domain).
    const bool clicked = has_click[b] && click[b] == 1.0f;
    if (!clicked) has_conversion[b] = 0;
    if (!has_click[b]) continue;
    has_ctcvr[b] = clicked ? has_conversion[b] : 1;
    ctcvr[b] = clicked && has_conversion[b] ? conversion[b] : 0.0f;
  }
  return absl::OkStatus();
}

void EsmmModel::Forward(const ModelInput& input, nn::ConstMatrixRef rows) {
  const nn::Matrix& towers_input = InputOf(input, rows);
  const nn::Matrix& ctr = heads_[ctr_]->Forward(towers_input);
  const nn::Matrix& cvr = heads_[cvr_]->Forward(towers_input);
  ctcvr_logits_.resize(ctr.rows(), 1);
  for (Eigen::Index b = 0; b < ctr.rows(); ++b) {
    ctcvr_logits_(b, 0) = static_cast<float>(nn::ProductLogit(ctr(b, 0), cvr(b, 0)));
  }
}

const nn::Matrix& EsmmModel::output(int task) const {
  return task == ctcvr_ ? ctcvr_logits_ : heads_[task]->output();
}

void EsmmModel::Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                         nn::Matrix* d_rows) {
  StartBackward(losses);
  losses->resize(all_tasks_.size());
  const nn::Matrix& ctr = heads_[ctr_]->output();
  const nn::Matrix& cvr = heads_[cvr_]->output();
  (*losses)[ctr_] = nn::SigmoidBinaryCrossEntropy(ctr, input.labels[ctr_],
                                                  {{}, input.has_label[ctr_]}, &d_ctr_logits_);
  (*losses)[cvr_] = nn::SigmoidBinaryCrossEntropy(cvr, input.labels[cvr_],
                                                  {{}, input.has_label[cvr_]}, &d_cvr_logits_);
  (*losses)[ctcvr_] = nn::ProductSigmoidBinaryCrossEntropy(ctr, cvr, input.labels[ctcvr_],
                                                           {{}, input.has_label[ctcvr_]},
                                                           &d_product_ctr_, &d_product_cvr_);
  const float ctcvr_weight = all_tasks_[ctcvr_].loss_weight();
  d_ctr_logits_ = all_tasks_[ctr_].loss_weight() * d_ctr_logits_ + ctcvr_weight * d_product_ctr_;
  d_cvr_logits_ = all_tasks_[cvr_].loss_weight() * d_cvr_logits_ + ctcvr_weight * d_product_cvr_;
  d_input_ = heads_[ctr_]->BackwardFromOutput(d_ctr_logits_);
  d_input_ += heads_[cvr_]->BackwardFromOutput(d_cvr_logits_);
  InputBackward(input, d_input_, d_rows);
}

}  // namespace granary
