// EsmmModel: the Entire Space Multi-task Model (Ma et al., SIGIR 2018) for a click and a
// conversion that can only follow a click.
//
//   input  = concat of the fields' pooled embeddings and the numeric fields (PooledFieldsModel;
//            the embeddings are shared by both towers)
//   pCTR   = sigmoid(CTR tower(input))      the ctr_task's head: its output is the CTR logit
//   pCVR   = sigmoid(CVR tower(input))      the cvr_task's head: its output is the CVR logit
//   pCTCVR = pCTR * pCVR                    the ctcvr_task ESMM appends to the job's tasks:
//                                           its output is the logit of the product
//
// Losses (tasks() order: the job's two tasks, then ctcvr_task):
//   ctr_task    sigmoid cross-entropy of pCTR against the click, on every impression;
//   cvr_task    sigmoid cross-entropy of pCVR on the clicked impressions only (its label is
//               masked where the click label is not 1); weight 0 unless configured, so pCVR
//               is learned through pCTCVR alone, on the entire space of impressions;
//   ctcvr_task  cross-entropy of pCTCVR against click AND conversion, on every impression with
//               a click label (a clicked impression also needs a conversion label).
// Evaluation therefore reports the CTR AUC and the CTCVR AUC over every impression and the
// CVR AUC over the clicked ones (conversion given click).
//
// Not thread-safe: layers keep activations between Forward and Backward; one thread per model.
#ifndef GRANARY_WORKER_MODELS_ESMM_MODEL_H_
#define GRANARY_WORKER_MODELS_ESMM_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/batch.h"
#include "worker/models/pooled_fields_model.h"
#include "worker/nn/loss.h"
#include "worker/nn/tensor.h"

namespace granary {

class EsmmModel : public PooledFieldsModel {
 public:
  // Builds the network of `model` (REQUIRES: valid by ValidateModelConfig against `dataset`,
  // defaults filled by FillModelDefaults; CreateModel fills them). InvalidArgument if the
  // model is not an ESMM one or a field is missing or of a role ColumnFor rejects.
  static absl::StatusOr<std::unique_ptr<EsmmModel>> Create(const proto::ModelConfig& model,
                                                           const proto::DatasetConfig& dataset);

  // Model. Prepare also derives the CVR task's clicked-only labels and the ctcvr task's.
  absl::Status Prepare(const Batch& batch, ModelInput* input) const override;
  void Forward(const ModelInput& input, nn::ConstMatrixRef rows) override;
  const nn::Matrix& output(int task) const override;
  void Backward(const ModelInput& input, std::vector<nn::LossValue>* losses,
                nn::Matrix* d_rows) override;
  // The job's two tasks, then the ctcvr task (BINARY, reading the CVR task's label column,
  // weight ctcvr_loss_weight).
  const std::vector<proto::TaskConfig>& tasks() const override { return all_tasks_; }

 private:
  EsmmModel(const proto::ModelConfig& model, Inputs inputs);

  const int ctr_;  // indexes of the job's tasks
  const int cvr_;
  const int ctcvr_;  // == 2, the appended task
  const std::vector<proto::TaskConfig> all_tasks_;
  nn::Matrix ctcvr_logits_;  // [B, 1]
  nn::Matrix d_ctr_logits_, d_cvr_logits_, d_product_ctr_, d_product_cvr_;
  nn::Matrix d_input_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_ESMM_MODEL_H_
