#include "ps/initializer.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>

#include "common/random.h"

namespace granary {
namespace {

// Uniform in [0, 1) from the top 24 bits, exactly representable as a float.
float UnitFloat(uint64_t bits) { return static_cast<float>(bits >> 40) * (1.0f / (1 << 24)); }

// Uniform in (0, 1] from the top 53 bits: never 0, so its logarithm is finite.
double PositiveUnitDouble(uint64_t bits) {
  return static_cast<double>((bits >> 11) + 1) * (1.0 / (1ULL << 53));
}

// Draws of a standard normal truncated to [-kNormalTruncation, kNormalTruncation] (draws
// outside are discarded), by Box-Muller: each pair of uniforms from `state` gives two
// independent normals. Computed in double and rounded to float only at the end, so that a
// last-bit difference between libm versions' log, sin or cos almost never reaches a value.
class TruncatedNormalStream {
 public:
  explicit TruncatedNormalStream(uint64_t state) : state_(state) {}

  double Next() {
    while (true) {
      if (has_spare_) {
        has_spare_ = false;
        if (std::abs(spare_) <= kNormalTruncation) return spare_;
      }
      const double radius = std::sqrt(-2.0 * std::log(PositiveUnitDouble(SplitMix64(&state_))));
      const double angle = kTwoPi * PositiveUnitDouble(SplitMix64(&state_));
      spare_ = radius * std::sin(angle);
      has_spare_ = true;
      const double draw = radius * std::cos(angle);
      if (std::abs(draw) <= kNormalTruncation) return draw;
    }
  }

 private:
  // Truncation in standard deviations, as documented for InitializerConfig.NORMAL.
  static constexpr double kNormalTruncation = 2.0;
  static constexpr double kTwoPi = 6.283185307179586476925;

  uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace

void InitializeRow(const proto::InitializerConfig& config, uint64_t key, int dim, float* row) {
  switch (config.kind()) {
    case proto::InitializerConfig::UNIFORM: {
      uint64_t state = XXH3_64bits_withSeed(&key, sizeof(key), config.seed());
      for (int i = 0; i < dim; ++i) {
        row[i] = (2.0f * UnitFloat(SplitMix64(&state)) - 1.0f) * config.scale();
      }
      return;
    }
    case proto::InitializerConfig::NORMAL: {
      TruncatedNormalStream normal(XXH3_64bits_withSeed(&key, sizeof(key), config.seed()));
      // |draw| <= 2 and rounding is monotone, so |value| <= 2 * scale exactly.
      for (int i = 0; i < dim; ++i) row[i] = static_cast<float>(normal.Next() * config.scale());
      return;
    }
    default:
      std::fill(row, row + dim, 0.0f);
  }
}

}  // namespace granary
