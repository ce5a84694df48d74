#include "common/wire_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

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

}  // namespace
}  // namespace granary
