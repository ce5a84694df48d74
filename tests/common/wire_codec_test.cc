#include "common/wire_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "absl/types/span.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

std::vector<float> RoundTrip(proto::ValueEncoding encoding, const std::vector<float>& values,
                             size_t dim) {
  std::vector<uint8_t> frame = EncodeValues(encoding, values, dim);
  EXPECT_EQ(frame.size(), values.size() / dim * EncodedRowBytes(encoding, dim));
  std::vector<float> decoded(values.size());
  absl::Status status = DecodeValues(encoding, frame, values.size() / dim, dim, decoded.data());
  EXPECT_TRUE(status.ok()) << status;
  return decoded;
}

std::vector<float> Gaussian(size_t count, float scale, uint32_t seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0, scale);
  std::vector<float> values(count);
  for (float& v : values) v = normal(random);
  return values;
}

TEST(WireCodecTest, RowBytes) {
  EXPECT_EQ(EncodedRowBytes(proto::VALUES_FP32, 16), 64u);
  EXPECT_EQ(EncodedRowBytes(proto::VALUES_FP16, 16), 32u);
  EXPECT_EQ(EncodedRowBytes(proto::VALUES_INT8, 16), 20u);
  EXPECT_EQ(EncodedRowBytes(static_cast<proto::ValueEncoding>(9), 16), 0u);
}

TEST(WireCodecTest, Fp32IsTheRawFloats) {
  const std::vector<float> values = Gaussian(48, 1, 1);
  std::vector<uint8_t> frame = EncodeValues(proto::VALUES_FP32, values, 16);
  ASSERT_EQ(frame.size(), values.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(frame.data(), values.data(), frame.size()), 0);
  EXPECT_EQ(RoundTrip(proto::VALUES_FP32, values, 16), values);
}

// Half precision keeps 11 significant bits: a relative error of at most 2^-11 for normal
// values, and the vectorized body (8 floats at a time) and the scalar tail agree.
TEST(WireCodecTest, Fp16RoundTripsWithinHalfPrecision) {
  std::vector<float> values = Gaussian(16 * 7 + 5, 3, 2);  // 117: a tail after 14 blocks of 8
  values.push_back(65504.0f);
  values.push_back(-1e-6f);  // a half subnormal
  values.push_back(0.0f);
  const std::vector<float> decoded = RoundTrip(proto::VALUES_FP16, values, 1);
  for (size_t i = 0; i < values.size(); ++i) {
    const float tolerance = std::max(std::fabs(values[i]) * 0x1p-11f, 0x1p-25f);
    EXPECT_NEAR(decoded[i], values[i], tolerance) << i;
  }
  // Every value in the vectorized body also goes through the scalar path when it is a tail.
  for (size_t i = 0; i < 16; ++i) {
    const std::vector<float> one = RoundTrip(proto::VALUES_FP16, {values[i]}, 1);
    EXPECT_EQ(one[0], decoded[i]) << i;
  }
}

TEST(WireCodecTest, Fp16OverflowAndNonFiniteStayNonFinite) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {1e6f, -1e6f, inf, std::nanf(""), 1, 2, 3, 4, 5};
  const std::vector<float> decoded = RoundTrip(proto::VALUES_FP16, values, 1);
  EXPECT_EQ(decoded[0], inf);
  EXPECT_EQ(decoded[1], -inf);
  EXPECT_EQ(decoded[2], inf);
  EXPECT_TRUE(std::isnan(decoded[3]));
  EXPECT_EQ(decoded[8], 5.0f);
}

// Each element is within half a step (max|row| / 127 / 2) of its value.
TEST(WireCodecTest, Int8RoundTripsWithinHalfAStepPerRow) {
  const size_t dim = 16;
  std::vector<float> values = Gaussian(dim * 10, 0.01f, 3);
  for (size_t d = 0; d < dim; ++d) values[dim + d] *= 1000;  // row 1 on another scale
  const std::vector<float> decoded = RoundTrip(proto::VALUES_INT8, values, dim);
  for (size_t r = 0; r < 10; ++r) {
    float largest = 0;
    for (size_t d = 0; d < dim; ++d) largest = std::max(largest, std::fabs(values[r * dim + d]));
    for (size_t d = 0; d < dim; ++d) {
      EXPECT_NEAR(decoded[r * dim + d], values[r * dim + d], largest / 127 / 2 * 1.001f)
          << r << "," << d;
    }
  }
}

TEST(WireCodecTest, Int8SaturatesKeepsZerosAndPoisonsNonFiniteRows) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {
      0,       0,
      0,       0,  // zeros stay zeros
      1e-37f,  0,
      -1e-42f, 0,  // below 127 FLT_MIN: the scale would be a subnormal float
      3e38f,   -3e38f,
      1,       0,  // the largest floats keep their sign and size
      1,       inf,
      2,       3,  // Inf: the whole row decodes as NaN
      1,       std::nanf(""),
      2,       3,  // NaN likewise
  };
  const std::vector<float> decoded = RoundTrip(proto::VALUES_INT8, values, 4);
  for (size_t d = 0; d < 8; ++d) EXPECT_EQ(decoded[d], 0.0f) << d;
  // The largest finite float stays finite: 127 x its scale must not round up to Inf.
  const float largest = std::numeric_limits<float>::max();
  const std::vector<float> extreme = RoundTrip(proto::VALUES_INT8, {largest, -largest}, 2);
  EXPECT_TRUE(std::isfinite(extreme[0]) && std::isfinite(extreme[1]));
  EXPECT_FLOAT_EQ(extreme[0], largest);
  EXPECT_FLOAT_EQ(decoded[8], 3e38f);
  EXPECT_FLOAT_EQ(decoded[9], -3e38f);
  EXPECT_EQ(decoded[10], 0.0f);  // 1 is far below half a step of 3e38 / 127
  for (size_t d = 12; d < 20; ++d) EXPECT_TRUE(std::isnan(decoded[d])) << d;
}

TEST(WireCodecTest, DecodeRefusesAFrameOfTheWrongSize) {
  std::vector<uint8_t> frame = EncodeValues(proto::VALUES_INT8, Gaussian(32, 1, 4), 16);
  std::vector<float> out(64, -1);
  absl::Status status = DecodeValues(proto::VALUES_INT8, frame, 3, 16, out.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("40 bytes is not 3 rows of dim 16 in VALUES_INT8"),
            std::string::npos)
      << status;
  EXPECT_EQ(out[0], -1.0f);  // nothing written
  frame.pop_back();
  EXPECT_FALSE(DecodeValues(proto::VALUES_INT8, frame, 2, 16, out.data()).ok());
  EXPECT_FALSE(DecodeValues(proto::VALUES_FP16, frame, 1, 0, out.data()).ok());
  EXPECT_FALSE(DecodeValues(static_cast<proto::ValueEncoding>(7), frame, 1, 16, out.data()).ok());
  // A row count from the wire near 2^64 cannot overflow the size check.
  EXPECT_FALSE(DecodeValues(proto::VALUES_FP32, frame, ~size_t{0}, 16, out.data()).ok());
}

// Encodes `keys` (sorted, unique) as Elias-Fano, checks the frame's size and decodes it back.
std::vector<uint64_t> EliasFanoRoundTrip(const std::vector<uint64_t>& keys) {
  const std::vector<uint64_t> words = EncodeKeys(proto::KEYS_ELIAS_FANO, keys);
  const size_t bytes = words.size() * sizeof(uint64_t);
  EXPECT_EQ(bytes, EncodedKeyBytes(proto::KEYS_ELIAS_FANO, keys.size()));
  std::vector<uint64_t> decoded(keys.size() + 1, 0xdeadbeef);  // one canary past the keys
  const absl::Status status =
      DecodeKeys(proto::KEYS_ELIAS_FANO,
                 absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(words.data()), bytes),
                 keys.size(), decoded.data());
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(decoded.back(), 0xdeadbeef);
  decoded.pop_back();
  return decoded;
}

TEST(WireCodecTest, EliasFanoRoundTripsAdversarialKeySets) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const std::vector<std::vector<uint64_t>> sets = {
      {0},
      {1},
      {kMax},
      {0, kMax},
      {0, 1, 2, 3, kMax - 1, kMax},
      {kMax - 4, kMax - 3, kMax - 2, kMax - 1, kMax},
      {uint64_t{1} << 63},
  };
  for (const std::vector<uint64_t>& keys : sets) {
    EXPECT_EQ(EliasFanoRoundTrip(keys), keys);
  }
  std::vector<uint64_t> dense(1000);
  for (uint64_t i = 0; i < dense.size(); ++i) dense[i] = i;
  EXPECT_EQ(EliasFanoRoundTrip(dense), dense);
  std::vector<uint64_t> sparse;  // one key per power of two: gaps of every width
  for (int bit = 0; bit < 64; ++bit) sparse.push_back(uint64_t{1} << bit);
  EXPECT_EQ(EliasFanoRoundTrip(sparse), sparse);
  std::vector<uint64_t> top(1 << 12);  // dense at the top of the key space
  for (uint64_t i = 0; i < top.size(); ++i) top[i] = kMax - (top.size() - 1 - i);
  EXPECT_EQ(EliasFanoRoundTrip(top), top);
}

TEST(WireCodecTest, EliasFanoRoundTripsRandomHashedKeysInUnderSevenBytesEach) {
  std::mt19937_64 random(17);
  for (size_t count : {2, 3, 100, 2000, 100000}) {
    std::vector<uint64_t> keys(count);
    for (uint64_t& key : keys) key = random();
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    EXPECT_EQ(EliasFanoRoundTrip(keys), keys) << count;
    if (count >= 2000) {
      // 2 + 64 - ceil(log2 n) bits per key: 6.9 B at 2,000, 6.2 B at 100,000.
      EXPECT_LT(EncodedKeyBytes(proto::KEYS_ELIAS_FANO, keys.size()), keys.size() * 7) << count;
    }
  }
}

TEST(WireCodecTest, RawKeysAreTheU64sByteForByte) {
  const std::vector<uint64_t> keys = {5, 3, 9};
  EXPECT_EQ(EncodeKeys(proto::KEYS_RAW, keys), keys);
  EXPECT_EQ(EncodedKeyBytes(proto::KEYS_RAW, 3), 24u);
  std::vector<uint64_t> decoded(3);
  ASSERT_TRUE(DecodeKeys(proto::KEYS_RAW,
                         absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(keys.data()), 24), 3,
                         decoded.data())
                  .ok());
  EXPECT_EQ(decoded, keys);
}

TEST(WireCodecTest, DecodeKeysRefusesTruncatedOrLyingFrames) {
  const std::vector<uint64_t> keys = {10, 20, 30, 40};
  const std::vector<uint64_t> words = EncodeKeys(proto::KEYS_ELIAS_FANO, keys);
  const auto bytes = [](const std::vector<uint64_t>& frame) {
    return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(frame.data()),
                               frame.size() * sizeof(uint64_t));
  };
  std::vector<uint64_t> out(32);
  // Truncated: one word short.
  absl::Status status =
      DecodeKeys(proto::KEYS_ELIAS_FANO, bytes(words).subspan(0, bytes(words).size() - 8),
                 keys.size(), out.data());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("is not 4 keys"), std::string::npos) << status;
  // A count the frame's size does not fit, and a count past the limit.
  EXPECT_FALSE(DecodeKeys(proto::KEYS_ELIAS_FANO, bytes(words), 1000, out.data()).ok());
  EXPECT_FALSE(
      DecodeKeys(proto::KEYS_ELIAS_FANO, bytes(words), kMaxEncodedKeys + 1, out.data()).ok());
  // Lying about the count with a frame of the same size: 15 and 16 keys share a size (H = 4),
  // so the frame of 15 read as 16 decodes to another number of keys.
  ASSERT_EQ(EncodedKeyBytes(proto::KEYS_ELIAS_FANO, 15),
            EncodedKeyBytes(proto::KEYS_ELIAS_FANO, 16));
  std::vector<uint64_t> fifteen(15);
  for (uint64_t i = 0; i < fifteen.size(); ++i) fifteen[i] = i * 1000;
  status = DecodeKeys(proto::KEYS_ELIAS_FANO, bytes(EncodeKeys(proto::KEYS_ELIAS_FANO, fifteen)),
                      16, out.data());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("declared to hold 16 keys decodes to 15"), std::string::npos)
      << status;
  // Repeated and unsorted keys (encoded by hand: EncodeKeys requires them sorted and unique).
  status = DecodeKeys(proto::KEYS_ELIAS_FANO,
                      bytes(EncodeKeys(proto::KEYS_ELIAS_FANO, {7, 7, 8, 9})), 4, out.data());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("not strictly ascending"), std::string::npos) << status;
  status = DecodeKeys(proto::KEYS_ELIAS_FANO,
                      bytes(EncodeKeys(proto::KEYS_ELIAS_FANO, {9, 8, 10, 11})), 4, out.data());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("not strictly ascending"), std::string::npos) << status;
  // A bit set in the padding past the upper array.
  std::vector<uint64_t> padded = words;
  padded.back() |= uint64_t{1} << 63;
  EXPECT_FALSE(DecodeKeys(proto::KEYS_ELIAS_FANO, bytes(padded), 4, out.data()).ok());
  // A bit set in the padding past the low parts: 4 keys x 62 low bits end at bit 56 of word 3.
  padded = words;
  padded[3] |= uint64_t{1} << 63;
  status = DecodeKeys(proto::KEYS_ELIAS_FANO, bytes(padded), 4, out.data());
  EXPECT_NE(status.message().find("bits set past its low parts"), std::string::npos) << status;
  // Unknown encoding.
  EXPECT_EQ(EncodedKeyBytes(static_cast<proto::KeyEncoding>(9), 4), 0u);
  EXPECT_FALSE(DecodeKeys(static_cast<proto::KeyEncoding>(9), bytes(words), 4, out.data()).ok());
  EXPECT_FALSE(DecodeKeys(static_cast<proto::KeyEncoding>(9), {}, 0, out.data()).ok());
}

}  // namespace
}  // namespace granary
