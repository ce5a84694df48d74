// SplitMix64 (Steele, Lea & Flood 2014): a tiny counter-based generator. Good enough for
// initial values, admission draws and shuffles, and — unlike the std:: engines and
// distributions — specified exactly, so seeded values never change across libraries.
// Thread-compatible: the state is the caller's.
#ifndef GRANARY_COMMON_RANDOM_H_
#define GRANARY_COMMON_RANDOM_H_

#include <cstdint>

namespace granary {

inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 53 bits.
inline double UnitDouble(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace granary

#endif  // GRANARY_COMMON_RANDOM_H_
