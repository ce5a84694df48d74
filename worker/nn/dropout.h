// Dropout (Srivastava et al., JMLR 2014), inverted: in a training pass each element of the
// input is zeroed with probability `rate` and the others scaled by 1 / (1 - rate), so that an
// element's expected value is its input; in an inference pass (ForwardMode.training false) the
// layer is the identity, so evaluation and export need no rescaling.
//
// The mask is a pure function of (ForwardMode.seed, ForwardMode.step, the layer's name, the
// element's index): a step computes the same mask however often it is rerun, two layers and
// two steps draw independent masks. Backward multiplies d_output by the last Forward's mask
// (and is the identity after an inference Forward).
//
// Not thread-safe: the layer keeps its mask; one thread at a time.
#ifndef GRANARY_WORKER_NN_DROPOUT_H_
#define GRANARY_WORKER_NN_DROPOUT_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "worker/nn/forward_mode.h"
#include "worker/nn/tensor.h"

namespace granary {
namespace nn {

class Dropout {
 public:
  // REQUIRES: rate in [0, 1); *mode outlives the layer.
  Dropout(const ForwardMode* mode, absl::string_view name, float rate);
  Dropout(const Dropout&) = delete;
  Dropout& operator=(const Dropout&) = delete;

  // Returns the masked input (in inference, or with rate 0: `input` itself), valid until the
  // next Forward.
  const Matrix& Forward(const Matrix& input);
  // Given d_output for the last Forward, returns d_input, valid until the next Backward (after
  // an inference Forward: `d_output` itself).
  const Matrix& Backward(const Matrix& d_output);

  float rate() const { return rate_; }

 private:
  const ForwardMode& mode_;
  const uint64_t name_seed_;
  const float rate_;
  const float keep_scale_;  // 1 / (1 - rate)
  bool masked_ = false;     // whether the last Forward applied mask_
  Matrix mask_;             // 0 or keep_scale_ per element
  Matrix output_;
  Matrix d_input_;
};

}  // namespace nn
}  // namespace granary

#endif  // GRANARY_WORKER_NN_DROPOUT_H_
