// CheckpointStore: the checkpoint root folder of a run and the manifests in it.
//
//   <root>/ckpt-000042/server-<rank>/   RocksDB checkpoint of each server (written by them)
//   <root>/ckpt-000042/MANIFEST         text CheckpointManifest, written last by rename
//
// A checkpoint exists only once its MANIFEST does: a folder without one (a checkpoint cut
// short by a crash) is ignored, and removed by Prune once a newer checkpoint is complete. Ids only
// grow, so the newest manifest is the one with the highest id.
//
// Prune runs on the scheduler's file thread (scheduler/file_worker.h) while the next
// checkpoint may be written (its MANIFEST on the manifest thread): it never removes the newest
// complete checkpoint (the one restored or just written) nor an incomplete folder newer than it
// (one being written).
//
// Thread-compatible; copyable (a copy goes to the file thread).
#ifndef GRANARY_SCHEDULER_CHECKPOINT_STORE_H_
#define GRANARY_SCHEDULER_CHECKPOINT_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/message.pb.h"

namespace granary {

// Removes the folder tree `path` (a missing one is no error): std::filesystem::remove_all
// unless SchedulerOptions::remove_tree replaces it (tests: a slow disk).
using RemoveTreeFn = std::function<absl::Status(const std::string& path)>;
// Calls `remove_tree`, or std::filesystem::remove_all if it is empty; Unavailable naming the
// path if that fails.
absl::Status RemoveTree(const RemoveTreeFn& remove_tree, const std::string& path);

// Writes `contents` to the file `path` atomically (common/atomic_file.h's WriteFileAtomically)
// unless SchedulerOptions::write_file replaces it (tests: a slow disk).
using WriteFileFn =
    std::function<absl::Status(const std::string& path, const std::string& contents)>;

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string root, RemoveTreeFn remove_tree = nullptr,
                           WriteFileFn write_file = nullptr)
      : root_(std::move(root)),
        remove_tree_(std::move(remove_tree)),
        write_file_(std::move(write_file)) {}

  const std::string& root() const { return root_; }

  // The folder of checkpoint `id`.
  std::string DirOf(uint64_t id) const;

  // The manifest with the highest id, or nullopt if there is none. DataLoss naming the file if
  // the newest manifest cannot be read or parsed (never silently an older one: that would
  // train chunks twice); Unavailable if the root cannot be listed.
  absl::StatusOr<std::optional<proto::CheckpointManifest>> Newest() const;

  // An id above every checkpoint folder present, complete or not.
  absl::StatusOr<uint64_t> NextId() const;

  // Creates the root and the (empty) folder of checkpoint `id`.
  absl::Status Prepare(uint64_t id) const;

  // Writes manifest.id()'s MANIFEST: to a temporary file, fsync, rename, fsync of the folder.
  // The fsyncs may take a second on a loaded disk: the scheduler runs it on its manifest thread.
  absl::Status WriteManifest(const proto::CheckpointManifest& manifest) const;

  // Removes every checkpoint folder except the `keep` newest complete ones; incomplete
  // folders older than the newest complete one go too. Returns how many were removed. May take
  // long on a slow disk: the scheduler runs it on its file thread.
  absl::StatusOr<int> Prune(int keep) const;

 private:
  std::string root_;
  RemoveTreeFn remove_tree_;
  WriteFileFn write_file_;
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_CHECKPOINT_STORE_H_
