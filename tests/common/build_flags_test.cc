// Guards the compiler flags in CMakeLists.txt: GCC 12.2 with AVX-512F enabled stores some
// 256-bit constants as one broadcast of their first word ({3, 3, 0, 0} becomes {3, 3, 3, 3}).
// The build turns AVX-512F off for GCC < 13; this fails if a flag change brings the bug back.
#include <cstring>

#include "gtest/gtest.h"

namespace granary {
namespace {

// Not inlined, so that the constant is materialized the way the miscompiled code did it.
__attribute__((noinline)) void CopyConstant(double* out) {
  const double constant[4] = {3, 3, 0, 0};
  std::memcpy(out, constant, sizeof(constant));
}

__attribute__((noinline)) void CopyBytes(signed char* out) {
  signed char constant[32];
  for (int i = 0; i < 32; ++i) constant[i] = i < 16 ? 9 : 0;
  std::memcpy(out, constant, sizeof(constant));
}

TEST(BuildFlagsTest, WideConstantsWithZeroUpperWordsSurviveCodeGeneration) {
  double values[4] = {-1, -1, -1, -1};
  CopyConstant(values);
  EXPECT_EQ(values[0], 3);
  EXPECT_EQ(values[1], 3);
  EXPECT_EQ(values[2], 0);
  EXPECT_EQ(values[3], 0);
  signed char bytes[32] = {};
  CopyBytes(bytes);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(bytes[i], i < 16 ? 9 : 0) << "byte " << i;
}

}  // namespace
}  // namespace granary
