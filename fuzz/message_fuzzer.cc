// Fuzz target: DecodeMessage (common/message.h), the gate every received message passes.
//
// The input is the frames of one multi-part message (fuzz/frames.h). A message that passes must
// keep the gate's promise: a data message's key and value frames of exactly the header's sizes,
// in whole elements; none on a control message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/message.h"
#include "fuzz/frames.h"

namespace {

constexpr char kPeer[] = "fuzz peer";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  granary::Message message;
  const absl::Status status = granary::DecodeMessage(granary::fuzz::SplitFrames(data, size),
                                                     granary::fuzz::kClusterId, kPeer, &message);
  (void)granary::DescribeSender(message.header, kPeer);
  if (!status.ok()) return 0;

  // A control message carries no key or value frame, whatever its header's sizes say (they
  // are not checked for control commands, and nothing reads them).
  if (!granary::IsDataCommand(message.header.command())) {
    if (message.keys.size() != 0 || message.values.size() != 0) __builtin_trap();
    return 0;
  }
  if (message.keys.size() != message.header.key_bytes() ||
      message.values.size() != message.header.value_bytes() ||
      message.keys.size() % sizeof(uint64_t) != 0 || message.values.size() % sizeof(float) != 0) {
    __builtin_trap();
  }
  // Read every element, as a server's push path does, so ASan sees any overrun.
  const granary::FrameArray<uint64_t> keys(message.keys);
  const granary::FrameArray<float> values(message.values);
  uint64_t key_sum = 0;
  for (uint64_t key : keys.span()) key_sum += key;
  float value_sum = 0;
  for (float value : values.span()) value_sum += value;
  volatile uint64_t sink = key_sum + static_cast<uint64_t>(value_sum != value_sum);
  (void)sink;
  return 0;
}
