// Fuzz target: the checkpoint manifest reader (scheduler/checkpoint_store.h). The input is
// the MANIFEST of checkpoint 1 in a root of its own; CheckpointStore::Newest reads it as a
// restarting scheduler does. A manifest that reads must carry its folder's id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "fuzz/scratch_file.h"
#include "scheduler/checkpoint_store.h"

namespace {

constexpr uint64_t kCheckpointId = 1;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const granary::CheckpointStore* const store = [] {
    auto* created = new granary::CheckpointStore(granary::fuzz::ScratchDir() + "/checkpoints");
    if (!created->Prepare(kCheckpointId).ok()) std::abort();
    return created;
  }();
  static const std::string* const manifest =
      new std::string(store->DirOf(kCheckpointId) + "/MANIFEST");
  granary::fuzz::WriteScratchFile(*manifest, data, size);

  absl::StatusOr<std::optional<granary::proto::CheckpointManifest>> newest = store->Newest();
  if (newest.ok() && (!newest->has_value() || (*newest)->id() != kCheckpointId)) {
    __builtin_trap();
  }
  return 0;
}
