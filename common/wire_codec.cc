#include "common/wire_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace granary {
namespace {

// The largest magnitude of an int8 code; -128 is not used, so that the codes are symmetric.
constexpr float kInt8Levels = 127.0f;
// The floats one F16C instruction converts.
constexpr size_t kHalfLanes = 8;

// Round to nearest even, as F16C does, so that both paths give the same bytes.
uint16_t FloatToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) {  // Inf, or NaN (kept quiet)
    return static_cast<uint16_t>(sign | (magnitude > 0x7f800000u ? 0x7e00u : 0x7c00u));
  }
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: Inf
  if (magnitude < 0x38800000u) {  // below 2^-14: a half subnormal, in units of 2^-24
    float absolute;
    std::memcpy(&absolute, &magnitude, sizeof(absolute));
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(absolute * 0x1p24f)));
  }
  const uint32_t rebiased = magnitude - 0x38000000u;  // exponent bias 127 -> 15
  return static_cast<uint16_t>(sign | ((rebiased + 0xfffu + ((rebiased >> 13) & 1u)) >> 13));
}

float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    const float value = static_cast<float>(mantissa) * 0x1p-24f;
    std::memcpy(&bits, &value, sizeof(bits));
    bits |= sign;
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

void EncodeHalf(const float* values, size_t count, uint8_t* out) {
  size_t i = 0;
#if defined(__F16C__)
  for (; i + kHalfLanes <= count; i += kHalfLanes) {
    const __m128i halves = _mm256_cvtps_ph(_mm256_loadu_ps(values + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i * sizeof(uint16_t)), halves);
  }
#endif
  for (; i < count; ++i) {
    const uint16_t half = FloatToHalf(values[i]);
    std::memcpy(out + i * sizeof(uint16_t), &half, sizeof(half));
  }
}

void DecodeHalf(const uint8_t* frame, size_t count, float* out) {
  size_t i = 0;
#if defined(__F16C__)
  for (; i + kHalfLanes <= count; i += kHalfLanes) {
    const __m128i halves =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(frame + i * sizeof(uint16_t)));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(halves));
  }
#endif
  for (; i < count; ++i) {
    uint16_t half;
    std::memcpy(&half, frame + i * sizeof(uint16_t), sizeof(half));
    out[i] = HalfToFloat(half);
  }
}

// One row: the scale, then dim codes.
void EncodeInt8Row(const float* row, size_t dim, uint8_t* out) {
  constexpr uint32_t kExponentBits = 0x7f800000u;
  float largest = 0;
  uint32_t non_finite = 0;
  for (size_t d = 0; d < dim; ++d) {
    uint32_t bits;
    std::memcpy(&bits, &row[d], sizeof(bits));
    non_finite |= (bits & kExponentBits) == kExponentBits;
    largest = std::max(largest, std::fabs(row[d]));
  }
  float scale = 0;
  float inverse = 0;
  if (non_finite != 0) {
    scale = std::numeric_limits<float>::quiet_NaN();
  } else if (largest >= kInt8Levels * std::numeric_limits<float>::min()) {
    // Below that the scale would be a subnormal float, whose few significant bits would make
    // q x s far from x: such a row (every |x| < 1.5e-36) is sent as zeros.
    scale = largest / kInt8Levels;
    // Rounded up, 127 x scale may pass FLT_MAX and a finite row would decode as Inf.
    if (!std::isfinite(scale * kInt8Levels)) scale = std::nextafter(scale, 0.0f);
    inverse = kInt8Levels / largest;
  }
  std::memcpy(out, &scale, sizeof(scale));
  int8_t* codes = reinterpret_cast<int8_t*>(out + sizeof(scale));
  for (size_t d = 0; d < dim; ++d) {
    // inverse is 0 for a non-finite row, where row[d] * 0 may be NaN: clamp it to 0 first.
    float level = non_finite != 0 ? 0.0f : row[d] * inverse;
    level = std::min(kInt8Levels, std::max(-kInt8Levels, level));
    codes[d] = static_cast<int8_t>(std::nearbyint(level));
  }
}

void DecodeInt8Row(const uint8_t* frame, size_t dim, float* out) {
  float scale;
  std::memcpy(&scale, frame, sizeof(scale));
  const int8_t* codes = reinterpret_cast<const int8_t*>(frame + sizeof(scale));
  for (size_t d = 0; d < dim; ++d) out[d] = static_cast<float>(codes[d]) * scale;
}

}  // namespace

size_t EncodedRowBytes(proto::ValueEncoding encoding, size_t dim) {
  switch (encoding) {
    case proto::VALUES_FP32:
      return dim * sizeof(float);
    case proto::VALUES_FP16:
      return dim * sizeof(uint16_t);
    case proto::VALUES_INT8:
      return sizeof(float) + dim * sizeof(int8_t);
    default:
      return 0;
  }
}

void EncodeValues(proto::ValueEncoding encoding, absl::Span<const float> values, size_t dim,
                  uint8_t* out) {
  const size_t rows = values.size() / dim;
  switch (encoding) {
    case proto::VALUES_FP32:
      if (!values.empty()) std::memcpy(out, values.data(), values.size() * sizeof(float));
      return;
    case proto::VALUES_FP16:
      EncodeHalf(values.data(), values.size(), out);
      return;
    case proto::VALUES_INT8: {
      const size_t row_bytes = EncodedRowBytes(encoding, dim);
      for (size_t r = 0; r < rows; ++r) EncodeInt8Row(&values[r * dim], dim, out + r * row_bytes);
      return;
    }
    default:
      return;
  }
}

std::vector<uint8_t> EncodeValues(proto::ValueEncoding encoding, absl::Span<const float> values,
                                  size_t dim) {
  std::vector<uint8_t> out(values.size() / dim * EncodedRowBytes(encoding, dim));
  EncodeValues(encoding, values, dim, out.data());
  return out;
}

absl::Status DecodeValues(proto::ValueEncoding encoding, absl::Span<const uint8_t> frame,
                          size_t rows, size_t dim, float* out) {
  const size_t row_bytes = EncodedRowBytes(encoding, dim);
  if (dim == 0 || row_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode values of dim ", dim, " as ",
                                                   proto::ValueEncoding_Name(encoding),
                                                   " (encoding ", encoding, ")"));
  }
  // Compared by division, so that no product of sizes from the wire can overflow.
  if (frame.size() % row_bytes != 0 || frame.size() / row_bytes != rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a value frame of ", frame.size(), " bytes is not ", rows, " rows of dim ", dim, " in ",
        proto::ValueEncoding_Name(encoding), " (", row_bytes, " bytes per row)"));
  }
  switch (encoding) {
    case proto::VALUES_FP32:
      if (!frame.empty()) std::memcpy(out, frame.data(), frame.size());
      break;
    case proto::VALUES_FP16:
      DecodeHalf(frame.data(), rows * dim, out);
      break;
    case proto::VALUES_INT8:
      for (size_t r = 0; r < rows; ++r) {
        DecodeInt8Row(frame.data() + r * row_bytes, dim, out + r * dim);
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

namespace {

constexpr unsigned kWordBits = 64;

// The layout of an Elias-Fano frame of `count` keys (count >= 1, <= kMaxEncodedKeys).
struct EliasFano {
  explicit EliasFano(uint64_t count)
      : high_bits(count <= 1 ? 0u : static_cast<unsigned>(kWordBits - __builtin_clzll(count - 1))),
        low_bits(kWordBits - high_bits),
        low_words((count * low_bits + kWordBits - 1) / kWordBits),
        upper_bits(count + (uint64_t{1} << high_bits)),
        upper_words((upper_bits + kWordBits - 1) / kWordBits) {}
  uint64_t Words() const { return low_words + upper_words; }

  unsigned high_bits;    // H = ceil(log2 count)
  unsigned low_bits;     // L = 64 - H, in 1..64
  uint64_t low_words;    // words of the n low parts
  uint64_t upper_bits;   // n + 2^H
  uint64_t upper_words;  // words of the upper bit array
};

uint64_t LoadWord(const uint8_t* frame, uint64_t word) {
  uint64_t value;
  std::memcpy(&value, frame + word * sizeof(uint64_t), sizeof(value));
  return value;
}

}  // namespace

size_t EncodedKeyBytes(proto::KeyEncoding encoding, uint64_t count) {
  switch (encoding) {
    case proto::KEYS_RAW:
      return count <= std::numeric_limits<size_t>::max() / sizeof(uint64_t)
                 ? count * sizeof(uint64_t)
                 : 0;
    case proto::KEYS_ELIAS_FANO:
      if (count == 0 || count > kMaxEncodedKeys) return 0;
      return EliasFano(count).Words() * sizeof(uint64_t);
    default:
      return 0;
  }
}

std::vector<uint64_t> EncodeKeys(proto::KeyEncoding encoding, absl::Span<const uint64_t> keys) {
  if (encoding == proto::KEYS_RAW || keys.empty()) {
    return std::vector<uint64_t>(keys.begin(), keys.end());
  }
  const EliasFano layout(keys.size());
  std::vector<uint64_t> words(layout.Words(), 0);
  const unsigned low_bits = layout.low_bits;
  const uint64_t low_mask = low_bits == kWordBits ? ~uint64_t{0} : (uint64_t{1} << low_bits) - 1;
  uint64_t* upper = words.data() + layout.low_words;
  const uint64_t* key = keys.data();  // not keys[i]: Span's checked operator[] stops GCC
  for (uint64_t i = 0; i < keys.size(); ++i) {
    const uint64_t low = key[i] & low_mask;
    const uint64_t position = i * low_bits;
    const uint64_t word = position / kWordBits;
    const unsigned offset = position % kWordBits;
    words[word] |= low << offset;
    if (offset + low_bits > kWordBits) words[word + 1] |= low >> (kWordBits - offset);
    const uint64_t high = low_bits == kWordBits ? 0 : key[i] >> low_bits;
    const uint64_t bit = high + i;
    upper[bit / kWordBits] |= uint64_t{1} << (bit % kWordBits);
  }
  return words;
}

absl::Status DecodeKeys(proto::KeyEncoding encoding, absl::Span<const uint8_t> frame,
                        uint64_t count, uint64_t* out) {
  const size_t expected = EncodedKeyBytes(encoding, count);
  const bool known = encoding == proto::KEYS_RAW || encoding == proto::KEYS_ELIAS_FANO;
  if (!known || (count > 0 && expected == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot decode ", count, " keys encoded ", proto::KeyEncoding_Name(encoding),
                     " (encoding ", encoding, "; at most ", kMaxEncodedKeys, " keys per frame)"));
  }
  if (frame.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("a key frame of ", frame.size(), " bytes is not ", count, " keys in ",
                     proto::KeyEncoding_Name(encoding), " (", expected, " bytes)"));
  }
  if (count == 0) return absl::OkStatus();
  if (encoding == proto::KEYS_RAW) {
    std::memcpy(out, frame.data(), frame.size());
    return absl::OkStatus();
  }
  const EliasFano layout(count);
  const unsigned low_bits = layout.low_bits;
  const uint64_t low_mask = low_bits == kWordBits ? ~uint64_t{0} : (uint64_t{1} << low_bits) - 1;
  const uint8_t* bytes = frame.data();
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t position = i * low_bits;
    const uint64_t word = position / kWordBits;
    const unsigned offset = position % kWordBits;
    uint64_t low = LoadWord(bytes, word) >> offset;
    if (offset + low_bits > kWordBits) low |= LoadWord(bytes, word + 1) << (kWordBits - offset);
    out[i] = low & low_mask;
  }
  // The low array's padding bits past its last key must be zero.
  const unsigned low_used = (count * low_bits) % kWordBits;
  if (low_used != 0 && (LoadWord(bytes, layout.low_words - 1) >> low_used) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("an Elias-Fano key frame of ", count,
                                                   " keys has bits set past its low parts"));
  }
  const uint64_t high_limit = uint64_t{1} << layout.high_bits;
  uint64_t found = 0;
  for (uint64_t w = 0; w < layout.upper_words; ++w) {
    uint64_t bits = LoadWord(bytes, layout.low_words + w);
    while (bits != 0) {
      const uint64_t bit = w * kWordBits + static_cast<unsigned>(__builtin_ctzll(bits));
      bits &= bits - 1;
      // found <= bit always: every earlier set bit is a lower position.
      const uint64_t high = bit - found;
      if (found == count || high >= high_limit) {
        return absl::InvalidArgumentError(absl::StrCat(
            "an Elias-Fano key frame of ", count, " keys decodes to more keys, or to a high part ",
            high, " past ", high_limit - 1, " (bit ", bit, ")"));
      }
      const uint64_t key = low_bits == kWordBits ? out[found] : (high << low_bits) | out[found];
      if (found > 0 && key <= out[found - 1]) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "an Elias-Fano key frame of %d keys is not strictly ascending: key %d (%#018x) "
            "follows %#018x",
            count, found, key, out[found - 1]));
      }
      out[found++] = key;
    }
  }
  if (found != count) {
    return absl::InvalidArgumentError(absl::StrCat("an Elias-Fano key frame declared to hold ",
                                                   count, " keys decodes to ", found));
  }
  return absl::OkStatus();
}

}  // namespace granary
