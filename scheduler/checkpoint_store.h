// CheckpointStore: the checkpoint root folder of a run and the manifests in it.
//
//   <root>/ckpt-000042/server-<rank>/   RocksDB checkpoint of each server (written by them)
//   <root>/ckpt-000042/MANIFEST         text CheckpointManifest, written last by rename
//
// A checkpoint exists only once its MANIFEST does: a folder without one (a checkpoint cut
// short by a crash) is ignored, and removed by Prune once a newer checkpoint is complete. Ids only
// grow, so the newest manifest is the one with the highest id.
//
// Thread-compatible.
#ifndef GRANARY_SCHEDULER_CHECKPOINT_STORE_H_
#define GRANARY_SCHEDULER_CHECKPOINT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto/message.pb.h"

namespace granary {

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string root) : root_(std::move(root)) {}

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
  absl::Status WriteManifest(const proto::CheckpointManifest& manifest) const;

  // Removes every checkpoint folder except the `keep` newest complete ones; incomplete
  // folders older than the newest complete one go too. Returns how many were removed.
  absl::StatusOr<int> Prune(int keep) const;

 private:
  const std::string root_;
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_CHECKPOINT_STORE_H_
