// CreateModel: the Model (worker/models/model.h) of a job's ModelConfig, by its architecture.
//
// worker/models/ holds the Model interface, the parts architectures share (EmbeddedFields,
// NumericFields, TaskHead, Tower; the bases MultiTaskModel, PooledFieldsModel and
// RetrievalModel), the rules and defaults of their config
// (model_config.h) and one pair of files per architecture, built on the layers of worker/nn/.
// Adding an architecture touches this folder, the proto, this factory and the tests, nothing
// else (the trainer, worker/main.cc and worker/job_config.* reach it through Model):
//   1. common/proto/job.proto: its config message and a field in ModelConfig.architecture;
//   2. worker/models/<name>_model.{h,cc}: a class derived from Model, or from the base it
//      shares most with, with a static Create(model, dataset);
//   3. worker/models/model_config.{h,cc}: its rules in ValidateModelConfig (column roles
//      through ColumnFor) and the defaults of its optional fields in FillModelDefaults;
//   4. model_factory.cc: its case in CreateModel;
//   5. tests/worker/models/<name>_model_test.cc (ExpectModelGradientsMatch of
//      tests/testing/model_testing.h) and its config in ModelFactoryTest; the .cc files in
//      CMakeLists.txt (granary_models, models_test).
//
// Thread-safe: a pure function of its arguments.
#ifndef GRANARY_WORKER_MODELS_MODEL_FACTORY_H_
#define GRANARY_WORKER_MODELS_MODEL_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"
#include "worker/models/model.h"

namespace granary {

// Builds the network of `model`, with its unset fields at their defaults (FillModelDefaults),
// with zero dense parameters (call params().Initialize(seed)). REQUIRES: valid by
// ValidateModelConfig against `dataset`. InvalidArgument if the model has no architecture or
// names a column the dataset lacks or of a role ColumnFor rejects.
absl::StatusOr<std::unique_ptr<Model>> CreateModel(const proto::ModelConfig& model,
                                                   const proto::DatasetConfig& dataset);

// The name of the model's architecture field ("dupn", "mmoe", ...), or "none".
std::string ArchitectureName(const proto::ModelConfig& model);

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_MODEL_FACTORY_H_
