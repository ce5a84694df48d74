// Fuzz target: the delta file reader (common/delta_file.h). The input is a whole delta file;
// it is read block by block to its footer or first error, as a serving copy applies one. A
// block that reads must hold keys.size() * dim values.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/delta_file.h"
#include "fuzz/scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string* const path =
      new std::string(granary::fuzz::ScratchDir() + "/input.delta");
  granary::fuzz::WriteScratchFile(*path, data, size);

  absl::StatusOr<std::unique_ptr<granary::DeltaReader>> reader = granary::DeltaReader::Open(*path);
  if (!reader.ok()) return 0;
  granary::DeltaTableBlock block;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    if (!more.ok() || !*more) break;
    if (block.dim < 0 ||
        block.values.size() != block.keys.size() * static_cast<size_t>(block.dim)) {
      __builtin_trap();
    }
  }
  return 0;
}
