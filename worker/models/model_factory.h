// CreateModel: the Model (worker/models/model.h) of a job's ModelConfig, by its architecture.
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

// Builds the network of `model` with zero dense parameters (call params().Initialize(seed)).
// REQUIRES: validated with ValidateJobConfig against `dataset`. InvalidArgument if the model
// has no architecture or names a column the dataset lacks.
absl::StatusOr<std::unique_ptr<Model>> CreateModel(const proto::ModelConfig& model,
                                                   const proto::DatasetConfig& dataset);

// The name of the model's architecture field ("dupn", "mmoe", ...), or "none".
std::string ArchitectureName(const proto::ModelConfig& model);

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_MODEL_FACTORY_H_
