#include "worker/error_feedback.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/wire_codec.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr size_t kDim = 16;

std::vector<float> Decode(proto::ValueEncoding encoding, const std::vector<uint8_t>& frame,
                          size_t rows) {
  std::vector<float> values(rows * kDim);
  EXPECT_TRUE(DecodeValues(encoding, frame, rows, kDim, values.data()).ok());
  return values;
}

// Over many pushes the server's sum of decoded gradients tracks the sum of the true ones within
// one quantization step of the last push (the residual still held), while without error
// feedback the rounding errors of small gradients add up.
TEST(ErrorFeedbackTest, SumOfDecodedPushesTracksSumOfTrueGradients) {
  for (proto::ValueEncoding encoding : {proto::VALUES_INT8, proto::VALUES_FP16}) {
    ErrorFeedback feedback(encoding, kDim);
    const std::vector<uint64_t> keys = {11, 42};
    std::mt19937 random(5);
    // One large element per row sets the int8 step; the others are far below it.
    std::normal_distribution<float> small(0.001f, 0.0005f);
    std::vector<double> true_sum(keys.size() * kDim, 0), sent_sum(true_sum.size(), 0),
        plain_sum(true_sum.size(), 0);
    constexpr int kSteps = 1000;
    float last_step = 0;
    for (int step = 0; step < kSteps; ++step) {
      std::vector<float> grads(keys.size() * kDim);
      for (float& g : grads) g = small(random);
      grads[0] = grads[kDim] = 1.0f;
      const std::vector<float> sent = Decode(encoding, feedback.Encode(keys, grads), keys.size());
      const std::vector<float> plain = Decode(encoding, EncodeValues(encoding, grads, kDim), 2);
      for (size_t i = 0; i < grads.size(); ++i) {
        true_sum[i] += grads[i];
        sent_sum[i] += sent[i];
        plain_sum[i] += plain[i];
      }
      last_step = encoding == proto::VALUES_INT8 ? 1.0f / 127 : 1.0f / 2048;
    }
    double worst_plain = 0;
    for (size_t i = 0; i < true_sum.size(); ++i) {
      EXPECT_NEAR(sent_sum[i], true_sum[i], last_step) << encoding << " element " << i;
      worst_plain = std::max(worst_plain, std::fabs(plain_sum[i] - true_sum[i]));
    }
    if (encoding == proto::VALUES_INT8) {
      EXPECT_GT(worst_plain, 100 * last_step);
    }
    EXPECT_EQ(feedback.keys(), keys.size());
  }
}

TEST(ErrorFeedbackTest, PastItsCapANewKeysErrorIsDroppedAndCounted) {
  ErrorFeedback feedback(proto::VALUES_INT8, kDim, /*max_keys=*/1);
  std::vector<float> grads(kDim, 0.001f);
  grads[0] = 1;
  feedback.Encode(std::vector<uint64_t>{1}, grads);
  feedback.Encode(std::vector<uint64_t>{2}, grads);
  EXPECT_EQ(feedback.keys(), 1u);
  EXPECT_EQ(feedback.dropped_keys(), 1u);
  // Key 1 carries its residual (0.001 rounds to 0 alone; 127 pushes of it add up to a step);
  // key 2, not held, sends zeros every time.
  double held = 0, dropped = 0;
  for (int step = 0; step < 200; ++step) {
    held += Decode(proto::VALUES_INT8, feedback.Encode(std::vector<uint64_t>{1}, grads), 1)[1];
    dropped += Decode(proto::VALUES_INT8, feedback.Encode(std::vector<uint64_t>{2}, grads), 1)[1];
  }
  EXPECT_NEAR(held, 0.2, 1.0 / 127);
  EXPECT_EQ(dropped, 0.0);
}

TEST(ErrorFeedbackTest, ANonFiniteGradientDoesNotPoisonLaterPushes) {
  ErrorFeedback feedback(proto::VALUES_INT8, kDim);
  std::vector<float> grads(kDim, 0.5f);
  grads[3] = std::numeric_limits<float>::infinity();
  const std::vector<float> poisoned =
      Decode(proto::VALUES_INT8, feedback.Encode(std::vector<uint64_t>{9}, grads), 1);
  EXPECT_TRUE(std::isnan(poisoned[0]));  // the server refuses this push whole
  grads[3] = 0.5f;
  const std::vector<float> next =
      Decode(proto::VALUES_INT8, feedback.Encode(std::vector<uint64_t>{9}, grads), 1);
  for (float v : next) EXPECT_FLOAT_EQ(v, 0.5f);
}

}  // namespace
}  // namespace granary
