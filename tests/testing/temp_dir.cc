#include "tests/testing/temp_dir.h"

#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <system_error>

#include "gtest/gtest.h"

namespace granary {

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/" + prefix + "-XXXXXX";
  return mkdtemp(pattern.data()) == nullptr ? std::string() : pattern;
}

void RemoveTempDirUnlessFailed(const std::string& dir) {
  if (dir.empty()) return;
  if (::testing::Test::HasFailure()) {
    std::cerr << "kept the folder " << dir << " of the failed test\n";
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace granary
