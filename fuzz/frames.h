// The input format of the fuzz targets that take one multi-part message (message,
// server_request): its frames, routing id removed, joined by kFrameSeparator. fuzz/make_seeds.cc
// writes seeds with JoinFrames; the targets split them with SplitFrames.
//
// Thread-safe: pure functions.
#ifndef GRANARY_FUZZ_FRAMES_H_
#define GRANARY_FUZZ_FRAMES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zmq.hpp"

namespace granary::fuzz {

inline constexpr std::string_view kFrameSeparator = "FRM|";
// The receiving node's cluster id; the seeds carry it, so that they pass DecodeMessage.
inline constexpr char kClusterId[] = "fuzz-cluster";

// The frames of `size` bytes at `data`: the pieces between separators (at least one, maybe
// empty).
std::vector<zmq::message_t> SplitFrames(const uint8_t* data, size_t size);

// `frames` joined by kFrameSeparator.
std::string JoinFrames(const std::vector<std::string>& frames);

}  // namespace granary::fuzz

#endif  // GRANARY_FUZZ_FRAMES_H_
