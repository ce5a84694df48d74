// Whether this test binary runs under AddressSanitizer (the -DGRANARY_SANITIZE=ON build of
// tests/sanitize.sh), and the one way a test skips there: GRANARY_SKIP_UNDER_SANITIZER(why),
// so that every skip says why it cannot apply (tests/sanitize.sh prints the reasons).
//
// Skip only what a sanitizer makes meaningless (ASan owns malloc; its shadow memory and
// quarantine inflate resident memory), never a test that merely runs slower there.
#ifndef GRANARY_TESTS_TESTING_SANITIZER_H_
#define GRANARY_TESTS_TESTING_SANITIZER_H_

#include "gtest/gtest.h"

// GRANARY_UNDER_SANITIZER is 1 in an ASan build: g++ defines __SANITIZE_ADDRESS__, clang
// answers __has_feature(address_sanitizer). For code that must not even be compiled there.
#if defined(__SANITIZE_ADDRESS__)
#define GRANARY_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRANARY_UNDER_SANITIZER 1
#endif
#endif
#ifndef GRANARY_UNDER_SANITIZER
#define GRANARY_UNDER_SANITIZER 0
#endif

namespace granary {

inline constexpr bool kUnderSanitizer = GRANARY_UNDER_SANITIZER != 0;

// How many times longer a wait for a process that does real work (training, a day close) may
// take under a sanitizer: ASan and UBSan made Granary's roles 3-18 times slower here. Scales
// deadlines only, never what a test asserts about the outcome.
inline constexpr int kSanitizerSlowdown = kUnderSanitizer ? 5 : 1;

}  // namespace granary

// In a TEST body: under a sanitizer, skips the test with "not under a sanitizer: " and `why`
// (anything that streams into a gtest message); otherwise does nothing.
#define GRANARY_SKIP_UNDER_SANITIZER(why)               \
  do {                                                  \
    if (::granary::kUnderSanitizer) {                   \
      GTEST_SKIP() << "not under a sanitizer: " << why; \
    }                                                   \
  } while (false)

#endif  // GRANARY_TESTS_TESTING_SANITIZER_H_
