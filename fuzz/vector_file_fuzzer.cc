// Fuzz target: the vector file reader (common/vector_file.h). The input is a whole vector
// file. A file that reads must hold keys.size() * dim values.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/vector_file.h"
#include "fuzz/scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string* const path =
      new std::string(granary::fuzz::ScratchDir() + "/input.vectors");
  granary::fuzz::WriteScratchFile(*path, data, size);

  absl::StatusOr<granary::VectorSet> vectors = granary::ReadVectorFile(*path);
  if (vectors.ok() &&
      vectors->values.size() != vectors->keys.size() * size_t{vectors->header.dim()}) {
    __builtin_trap();
  }
  return 0;
}
