#include "ps/initializer.h"

#include <xxhash.h>

#include <algorithm>

namespace granary {
namespace {

// SplitMix64: a tiny counter-based generator; enough statistical quality for initial values
// and, unlike std:: engines, specified exactly so values never change across libraries.
uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 24 bits, exactly representable as a float.
float UnitFloat(uint64_t bits) { return static_cast<float>(bits >> 40) * (1.0f / (1 << 24)); }

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
    default:
      std::fill(row, row + dim, 0.0f);
  }
}

}  // namespace granary
