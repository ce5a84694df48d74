#include "tests/testing/temp_dir.h"

#include <stdlib.h>

#include <filesystem>

namespace granary {

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/" + prefix + "-XXXXXX";
  return mkdtemp(pattern.data()) == nullptr ? std::string() : pattern;
}

}  // namespace granary
