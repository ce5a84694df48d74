#include "fuzz/frames.h"

namespace granary::fuzz {

std::vector<zmq::message_t> SplitFrames(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<zmq::message_t> frames;
  for (size_t start = 0;;) {
    const size_t end = input.find(kFrameSeparator, start);
    const std::string_view frame =
        input.substr(start, end == std::string_view::npos ? end : end - start);
    frames.emplace_back(frame.data(), frame.size());
    if (end == std::string_view::npos) break;
    start = end + kFrameSeparator.size();
  }
  return frames;
}

std::string JoinFrames(const std::vector<std::string>& frames) {
  std::string joined;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (i > 0) joined += kFrameSeparator;
    joined += frames[i];
  }
  return joined;
}

}  // namespace granary::fuzz
