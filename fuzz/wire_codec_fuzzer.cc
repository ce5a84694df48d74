// Fuzz target: the value-frame decoder of the light wire (common/wire_codec.h), as a server
// decodes a PUSH and a worker a PULL_REPLY, and its encoder on arbitrary floats; and its
// key-frame decoder, as a server's CheckRequest decodes a request's keys. The input is one byte
// of encoding, then for values (first byte below 0x80; its value mod 4: fp32, fp16, int8 or an
// unknown one) one byte of dim (mod 65, so 0 is tried), one byte of the rows the header claims,
// then the frame; for keys (first byte 0x80 or above; its low 7 bits mod 3: raw, Elias-Fano or
// an unknown one) two bytes of the key count the header claims (little-endian), then the frame.
//
// A key decode must succeed only when the frame has that count's exact size, must write at most
// count keys, and what it accepts is canonical: Elias-Fano keys strictly ascending and encoding
// back to the very frame. The frame read as u64 keys, sorted and deduplicated, must round-trip
// through Elias-Fano exactly.
//
// A value decode must succeed exactly when the frame holds that many rows of that encoding, and
// write only rows x dim floats. The frame read as floats, encoded in each encoding and decoded
// again, must come back within the encoding's precision: fp16 to 2^-11 relative, int8 to half
// a step of its row (max|x| / 254; zeros if max|x| < 127 x FLT_MIN), a row with a non-finite
// value as NaN.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/wire_codec.h"

namespace {

constexpr size_t kPrefixBytes = 3;
constexpr int kEncodings = 4;  // the three known ones and one unknown
constexpr size_t kMaxDim = 64;

using granary::proto::KeyEncoding;
using granary::proto::ValueEncoding;

constexpr uint8_t kKeyMode = 0x80;
constexpr int kKeyEncodings = 3;  // the two known ones and one unknown
constexpr size_t kKeyPrefixBytes = 3;

int FuzzKeys(const uint8_t* data, size_t size) {
  if (size < kKeyPrefixBytes) return 0;
  const auto encoding = static_cast<KeyEncoding>((data[0] & ~kKeyMode) % kKeyEncodings);
  const uint64_t count = data[1] | (uint64_t{data[2]} << 8);
  const absl::Span<const uint8_t> frame(data + kKeyPrefixBytes, size - kKeyPrefixBytes);
  constexpr uint64_t kCanary = 0x5eed5eed5eed5eedull;
  std::vector<uint64_t> out(count + 1, kCanary);
  const absl::Status status = granary::DecodeKeys(encoding, frame, count, out.data());
  if (out.back() != kCanary) __builtin_trap();
  if (status.ok()) {
    if (frame.size() != granary::EncodedKeyBytes(encoding, count)) __builtin_trap();
    out.pop_back();
    if (encoding == granary::proto::KEYS_ELIAS_FANO) {
      for (size_t i = 1; i < out.size(); ++i) {
        if (out[i] <= out[i - 1]) __builtin_trap();
      }
    } else if (encoding != granary::proto::KEYS_RAW) {
      __builtin_trap();
    }
    const std::vector<uint64_t> again = granary::EncodeKeys(encoding, out);
    if (again.size() * sizeof(uint64_t) != frame.size() ||
        (!frame.empty() && std::memcmp(again.data(), frame.data(), frame.size()) != 0)) {
      __builtin_trap();
    }
  } else if (encoding == granary::proto::KEYS_RAW && frame.size() == count * sizeof(uint64_t)) {
    __builtin_trap();  // raw keys of the right size always decode
  }

  std::vector<uint64_t> keys(frame.size() / sizeof(uint64_t));
  if (!keys.empty()) std::memcpy(keys.data(), frame.data(), keys.size() * sizeof(uint64_t));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const std::vector<uint64_t> words = granary::EncodeKeys(granary::proto::KEYS_ELIAS_FANO, keys);
  const size_t bytes = words.size() * sizeof(uint64_t);
  if (bytes != granary::EncodedKeyBytes(granary::proto::KEYS_ELIAS_FANO, keys.size())) {
    __builtin_trap();
  }
  std::vector<uint64_t> decoded(keys.size());
  if (!granary::DecodeKeys(
           granary::proto::KEYS_ELIAS_FANO,
           absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(words.data()), bytes), keys.size(),
           decoded.data())
           .ok() ||
      decoded != keys) {
    __builtin_trap();
  }
  return 0;
}

void CheckRoundTrip(ValueEncoding encoding, const std::vector<float>& values, size_t dim) {
  const size_t rows = values.size() / dim;
  const std::vector<uint8_t> frame = granary::EncodeValues(encoding, values, dim);
  if (frame.size() != rows * granary::EncodedRowBytes(encoding, dim)) __builtin_trap();
  std::vector<float> decoded(values.size());
  if (!granary::DecodeValues(encoding, frame, rows, dim, decoded.data()).ok()) __builtin_trap();
  for (size_t r = 0; r < rows; ++r) {
    bool finite = true;
    float largest = 0;
    for (size_t d = 0; d < dim; ++d) {
      finite &= std::isfinite(values[r * dim + d]);
      if (finite) largest = std::max(largest, std::fabs(values[r * dim + d]));
    }
    for (size_t d = 0; d < dim; ++d) {
      const float in = values[r * dim + d];
      const float out = decoded[r * dim + d];
      if (encoding == granary::proto::VALUES_INT8) {
        if (!finite) {
          if (!std::isnan(out)) __builtin_trap();
        } else if (largest < 127 * std::numeric_limits<float>::min()
                       ? out != 0
                       : std::fabs(out - in) > largest / 254 * 1.001f) {
          __builtin_trap();
        }
      } else if (encoding == granary::proto::VALUES_FP16 && std::isfinite(in) &&
                 std::fabs(in) < 65504) {
        if (std::fabs(out - in) > std::fabs(in) * 0x1p-11f + 0x1p-25f) __builtin_trap();
      } else if (encoding == granary::proto::VALUES_FP32 && std::memcmp(&in, &out, sizeof(in))) {
        __builtin_trap();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 1 && (data[0] & kKeyMode) != 0) return FuzzKeys(data, size);
  if (size < kPrefixBytes) return 0;
  const auto encoding = static_cast<ValueEncoding>(data[0] % kEncodings);
  const size_t dim = data[1] % (kMaxDim + 1);
  const size_t rows = data[2];
  const absl::Span<const uint8_t> frame(data + kPrefixBytes, size - kPrefixBytes);

  // One float past the rows, which a decode must never write.
  constexpr float kCanary = -12345.0f;
  std::vector<float> out(rows * dim + 1, kCanary);
  const absl::Status status = granary::DecodeValues(encoding, frame, rows, dim, out.data());
  const size_t row_bytes = granary::EncodedRowBytes(encoding, dim);
  const bool fits = dim > 0 && row_bytes > 0 && frame.size() == rows * row_bytes;
  if (status.ok() != fits) __builtin_trap();
  if (out.back() != kCanary) __builtin_trap();

  if (dim == 0) return 0;
  std::vector<float> values(frame.size() / sizeof(float) / dim * dim);
  if (!values.empty()) std::memcpy(values.data(), frame.data(), values.size() * sizeof(float));
  for (ValueEncoding known :
       {granary::proto::VALUES_FP32, granary::proto::VALUES_FP16, granary::proto::VALUES_INT8}) {
    CheckRoundTrip(known, values, dim);
  }
  return 0;
}
