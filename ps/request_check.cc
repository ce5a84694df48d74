#include "ps/request_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/wire_codec.h"

namespace granary {
namespace {

// True if all `keys` lie in the range that holds the first, as a worker's request normally does
// (it sends one part per range). One pass of a subtraction and an unsigned compare per key,
// counted rather than branched on, proves it; the pass vectorizes, and costs half of the min/max
// pass it replaced (two compares and two blends per key without AVX-512's unsigned min/max),
// which perf showed at 7-8 % of a 160K- or 1M-key transport round trip.
bool AllInOneRange(absl::Span<const uint64_t> keys, absl::Span<const KeyRange> ranges) {
  if (keys.empty()) return true;
  const uint64_t* key = keys.data();  // not keys[i]: Span's checked operator[] stops GCC
  for (const KeyRange& range : ranges) {
    if (!range.Contains(key[0])) continue;
    const uint64_t first = range.first;
    const uint64_t width = range.last - range.first;
    size_t outside = 0;  // a key below `first` wraps around to far above `width`
    for (size_t i = 0; i < keys.size(); ++i) outside += key[i] - first > width;
    return outside == 0;
  }
  return false;
}

// The enum's name, or its number for one this build does not know.
std::string EncodingName(proto::ValueEncoding encoding) {
  return proto::ValueEncoding_IsValid(encoding) ? proto::ValueEncoding_Name(encoding)
                                                : absl::StrCat("#", static_cast<int>(encoding));
}

std::string KeyEncodingName(proto::KeyEncoding encoding) {
  return proto::KeyEncoding_IsValid(encoding) ? proto::KeyEncoding_Name(encoding)
                                              : absl::StrCat("#", static_cast<int>(encoding));
}

// Replaces the encoded key frame *frame by its `count` decoded raw u64 keys.
absl::Status DecodeKeyFrame(proto::KeyEncoding encoding, uint64_t count, zmq::message_t* frame) {
  zmq::message_t decoded(count * sizeof(uint64_t));
  // ZeroMQ keeps a small frame inside the message itself, maybe misaligned for u64.
  const bool aligned = reinterpret_cast<uintptr_t>(decoded.data()) % alignof(uint64_t) == 0;
  std::vector<uint64_t> unaligned(aligned ? 0 : count);
  uint64_t* keys = aligned ? static_cast<uint64_t*>(decoded.data()) : unaligned.data();
  absl::Status status = DecodeKeys(
      encoding, absl::MakeConstSpan(static_cast<const uint8_t*>(frame->data()), frame->size()),
      count, keys);
  if (!status.ok()) return status;
  if (!aligned && count > 0) std::memcpy(decoded.data(), keys, count * sizeof(uint64_t));
  *frame = std::move(decoded);
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRequest(Message* request_ptr, const std::string& sender,
                          const RequestBounds& bounds, TableDimension dim_of) {
  Message& request = *request_ptr;
  const proto::Header& header = request.header;
  if (header.command() != proto::PULL && header.command() != proto::PUSH) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server does not serve ", proto::Command_Name(header.command()), " from ", sender));
  }
  if (header.shard_map_version() != bounds.shard_map_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("shard map version ", header.shard_map_version(), " from ", sender,
                     " is not the server's ", bounds.shard_map_version));
  }
  const TableShape shape = dim_of(header.table());
  const int dim = shape.dim;
  if (dim <= 0) {
    return absl::NotFoundError(absl::StrCat("unknown table '", header.table(), "' from ", sender));
  }
  // Raw keys are self-describing, and a worker sends a part raw where the table's encoding
  // would not be smaller.
  if (header.key_encoding() != proto::KEYS_RAW && header.key_encoding() != shape.keys) {
    return absl::InvalidArgumentError(absl::StrCat(
        proto::Command_Name(header.command()), " to table '", header.table(), "' from ", sender,
        " has keys encoded ", KeyEncodingName(header.key_encoding()),
        ", but the server's table takes KEYS_RAW",
        shape.keys == proto::KEYS_RAW ? "" : absl::StrCat(" or ", KeyEncodingName(shape.keys)),
        " (the worker's and the server's TableConfig.wire differ)"));
  }
  const bool raw_keys = header.key_encoding() == proto::KEYS_RAW;
  const uint64_t num_keys = raw_keys ? request.keys.size() / sizeof(uint64_t) : header.key_count();
  if (num_keys > bounds.max_request_keys) {
    return absl::ResourceExhaustedError(
        absl::StrCat(proto::Command_Name(header.command()), " of ", num_keys, " keys to table '",
                     header.table(), "' from ", sender, " is over the limit of ",
                     bounds.max_request_keys, " keys per request (--max_request_keys)"));
  }
  // Compared by division, so that no product of sizes from the wire can overflow.
  const size_t bytes_per_key = sizeof(uint64_t) + static_cast<size_t>(dim) * sizeof(float);
  if (num_keys > bounds.max_request_bytes / bytes_per_key) {
    const size_t request_bytes = num_keys <= std::numeric_limits<size_t>::max() / bytes_per_key
                                     ? num_keys * bytes_per_key
                                     : std::numeric_limits<size_t>::max();
    return absl::ResourceExhaustedError(
        absl::StrCat(proto::Command_Name(header.command()), " of ", num_keys, " keys to table '",
                     header.table(), "' (dim ", dim, ") from ", sender, " carries ", request_bytes,
                     " bytes of keys and values, over the limit of ", bounds.max_request_bytes,
                     " bytes per request (--max_request_bytes)"));
  }
  const proto::ValueEncoding encoding =
      header.command() == proto::PUSH ? shape.push_values : shape.pull_values;
  if (header.value_encoding() != encoding) {
    return absl::InvalidArgumentError(absl::StrCat(
        proto::Command_Name(header.command()), " to table '", header.table(), "' from ", sender,
        " has values encoded ", EncodingName(header.value_encoding()),
        ", but the server's table takes ", EncodingName(encoding),
        " (the worker's and the server's TableConfig.wire differ)"));
  }
  // No overflow: num_keys x bytes_per_key is at most max_request_bytes, and an encoded row is
  // at most 4 + 4 x dim bytes.
  const size_t expected_values =
      header.command() == proto::PUSH
          ? num_keys * EncodedRowBytes(shape.push_values, static_cast<size_t>(dim))
          : 0;
  if (header.read_only() && header.command() != proto::PULL) {
    return absl::InvalidArgumentError(absl::StrCat(
        "read_only is only for PULL; ", proto::Command_Name(header.command()), " from ", sender));
  }
  if (request.values.size() != expected_values) {
    return absl::InvalidArgumentError(
        absl::StrCat(proto::Command_Name(header.command()), " of ", num_keys, " keys to table '",
                     header.table(), "' (dim ", dim, ") carries ", request.values.size(),
                     " value bytes, expected ", expected_values, ", from ", sender));
  }
  if (!raw_keys) {
    // num_keys is within max_request_keys, so this allocation is bounded by a flag.
    absl::Status decoded = DecodeKeyFrame(header.key_encoding(), num_keys, &request.keys);
    if (!decoded.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(proto::Command_Name(header.command()),
                                                     " to table '", header.table(), "' from ",
                                                     sender, ": ", decoded.message()));
    }
  }
  FrameArray<uint64_t> keys(request.keys);
  if (AllInOneRange(keys.span(), bounds.ranges)) return absl::OkStatus();
  for (uint64_t key : keys.span()) {
    bool owned = false;
    for (const KeyRange& range : bounds.ranges) owned |= range.Contains(key);
    if (!owned) {
      return absl::OutOfRangeError(
          absl::StrFormat("key %#018x in table '%s' from %s is outside the ranges of server %d",
                          key, header.table(), sender, bounds.server_rank));
    }
  }
  return absl::OkStatus();
}

size_t FirstNonFinite(absl::Span<const float> values) {
  // A float is non-finite when its exponent bits are all ones; OR-ing that test over the array
  // is branch-free and vectorizes (a float sum would not: its order is fixed).
  constexpr uint32_t kExponentBits = 0x7f800000;
  uint32_t non_finite = 0;
  for (float value : values) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    non_finite |= (bits & kExponentBits) == kExponentBits;
  }
  if (non_finite == 0) return values.size();
  return std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); }) -
         values.begin();
}

}  // namespace granary
