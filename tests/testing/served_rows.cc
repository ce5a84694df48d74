#include "tests/testing/served_rows.h"

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/delta_file.h"

namespace granary {

absl::StatusOr<int> ApplyDayDeltas(const std::string& day_dir, const std::string& table,
                                   ServedRows* rows) {
  std::error_code error;
  std::filesystem::directory_iterator files(day_dir, error);
  if (error)
    return absl::NotFoundError(absl::StrCat("cannot list ", day_dir, ": ", error.message()));
  int count = 0;
  for (const auto& entry : files) {
    ++count;
    absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(entry.path());
    if (!reader.ok()) return reader.status();
    DeltaTableBlock block;
    while (true) {
      absl::StatusOr<bool> more = (*reader)->Next(&block);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (block.table != table) continue;
      for (size_t i = 0; i < block.keys.size(); ++i) {
        (*rows)[block.keys[i]].assign(block.values.begin() + i * block.dim,
                                      block.values.begin() + (i + 1) * block.dim);
      }
      for (uint64_t key : block.tombstones) rows->erase(key);
    }
  }
  return count;
}

}  // namespace granary
