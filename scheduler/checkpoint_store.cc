#include "scheduler/checkpoint_store.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/config.h"
#include "google/protobuf/text_format.h"

namespace granary {
namespace {

constexpr char kPrefix[] = "ckpt-";
constexpr char kManifest[] = "MANIFEST";

// Checkpoint folders under `root` by id, with whether each has a manifest.
absl::StatusOr<std::map<uint64_t, bool>> ListCheckpoints(const std::string& root) {
  std::map<uint64_t, bool> found;
  std::error_code error;
  if (!std::filesystem::exists(root, error)) return found;
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    std::string name = entry.path().filename().string();
    uint64_t id = 0;
    if (name.rfind(kPrefix, 0) != 0 || !absl::SimpleAtoi(name.substr(strlen(kPrefix)), &id)) {
      continue;
    }
    found[id] = std::filesystem::exists(entry.path() / kManifest);
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot list checkpoint root ", root, ": ", error.message()));
  }
  return found;
}

}  // namespace

absl::Status RemoveTree(const RemoveTreeFn& remove_tree, const std::string& path) {
  if (remove_tree) return remove_tree(path);
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot remove ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

std::string CheckpointStore::DirOf(uint64_t id) const {
  return absl::StrFormat("%s/%s%06d", root_, kPrefix, id);
}

absl::StatusOr<std::optional<proto::CheckpointManifest>> CheckpointStore::Newest() const {
  absl::StatusOr<std::map<uint64_t, bool>> found = ListCheckpoints(root_);
  if (!found.ok()) return found.status();
  for (auto it = found->rbegin(); it != found->rend(); ++it) {
    if (!it->second) continue;
    const std::string path = absl::StrCat(DirOf(it->first), "/", kManifest);
    proto::CheckpointManifest manifest;
    absl::Status parsed = ParseTextProtoFile(path, &manifest);
    if (!parsed.ok()) {
      return absl::DataLossError(
          absl::StrCat("checkpoint manifest ", path, " is unreadable: ", parsed.message()));
    }
    if (manifest.id() != it->first) {
      return absl::DataLossError(absl::StrCat("checkpoint manifest ", path, " says id ",
                                              manifest.id(), ", its folder ", it->first));
    }
    return manifest;
  }
  return std::nullopt;
}

absl::StatusOr<uint64_t> CheckpointStore::NextId() const {
  absl::StatusOr<std::map<uint64_t, bool>> found = ListCheckpoints(root_);
  if (!found.ok()) return found.status();
  return found->empty() ? 1 : found->rbegin()->first + 1;
}

absl::Status CheckpointStore::Prepare(uint64_t id) const {
  std::error_code error;
  std::filesystem::create_directories(DirOf(id), error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create checkpoint folder ", DirOf(id), ": ", error.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckpointStore::WriteManifest(const proto::CheckpointManifest& manifest) const {
  const std::string path = absl::StrCat(DirOf(manifest.id()), "/", kManifest);
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(manifest, &text)) {
    return absl::InternalError(absl::StrCat("cannot print manifest ", path));
  }
  std::string contents = absl::StrCat(
      "# Granary checkpoint manifest (proto granary.proto.CheckpointManifest)\n", text);
  if (write_file_) return write_file_(path, contents);
  return WriteFileAtomically(path, contents);
}

absl::StatusOr<int> CheckpointStore::Prune(int keep) const {
  absl::StatusOr<std::map<uint64_t, bool>> found = ListCheckpoints(root_);
  if (!found.ok()) return found.status();
  std::vector<uint64_t> complete;
  for (const auto& [id, has_manifest] : *found) {
    if (has_manifest) complete.push_back(id);
  }
  if (complete.empty()) return 0;
  const size_t kept = std::min<size_t>(std::max(keep, 1), complete.size());
  const uint64_t oldest_kept = complete[complete.size() - kept];
  int removed = 0;
  for (const auto& [id, has_manifest] : *found) {
    // Incomplete folders newer than the newest checkpoint may be one being written now;
    // older ones are failed attempts.
    const bool obsolete = has_manifest ? id < oldest_kept : id < complete.back();
    if (!obsolete) continue;
    absl::Status status = RemoveTree(remove_tree_, DirOf(id));
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("pruning old checkpoints in ", root_, ": ",
                                                      status.message()));
    }
    ++removed;
  }
  return removed;
}

}  // namespace granary
