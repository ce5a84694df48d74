// ForwardMode: whether a model's Forward is a training pass, and which random draws the layers
// that differ in training (Dropout) make in it.
//
// A model's ParameterSet holds its one ForwardMode, because the set is the one object every
// layer of the model is built with (as PyTorch keeps Module.training on the module tree).
// Whoever runs the model sets it: the BatchPipeline turns `training` on for a training step's
// Forward and Backward and off again, so evaluation, export and any other Forward are
// inference passes without any call.
#ifndef GRANARY_WORKER_NN_FORWARD_MODE_H_
#define GRANARY_WORKER_NN_FORWARD_MODE_H_

#include <cstdint>

namespace granary {
namespace nn {

struct ForwardMode {
  // False (the default): an inference pass, where every layer is deterministic and Dropout is
  // the identity.
  bool training = false;
  // The replica's random stream: the Trainer sets it once from the job's seed, the worker's
  // rank and the compute thread, so that replicas draw independent masks and a rerun the same.
  uint64_t seed = 0;
  // The replica's training step, advanced by the BatchPipeline before each training Forward:
  // a training pass's draws depend only on (seed, step, layer), never on earlier passes.
  int64_t step = 0;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_FORWARD_MODE_H_
