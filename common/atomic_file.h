// Durable and atomic files: the one home for fsync and for publishing a file whole.
//
// A file that readers must see complete or not at all (a checkpoint manifest, a day report, an
// evaluation file, an address file, a converted input file) is written under a temporary name
// beside its final one and published by PublishFile: fsync of the file, rename over the final
// name, fsync of the folder (as LevelDB's SetCurrentFile). After a crash at any point the final
// name holds either the old contents or the new, never a part.
//
//   const std::string temporary = TemporaryPathOf(path);
//   ... write `temporary` with any writer (ofstream, gzip, ...) and close it ...
//   absl::Status status = PublishFile(temporary, path);
//
// Every error names the path and the reason (errno text). Thread-safe: functions of their
// arguments and the file system.
#ifndef GRANARY_COMMON_ATOMIC_FILE_H_
#define GRANARY_COMMON_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace granary {

// The temporary name under which `path` is written before PublishFile: "<path>.tmp", in the
// same folder, so that the rename stays within one file system.
std::string TemporaryPathOf(const std::string& path);

// Makes the file or folder `path` durable (fsync). Unavailable naming `path` on failure.
absl::Status SyncPath(const std::string& path);

// Makes a folder's regular files, the folder itself and its parent's entry for it durable
// (a RocksDB checkpoint written without syncs, for example). Subfolders are not visited.
absl::Status SyncFolderFiles(const std::string& folder);

// Publishes the closed file `temporary` as `path`: fsync of `temporary`, rename over `path`,
// fsync of the folder of `path`. On failure `temporary` is removed, `path` keeps what it held,
// and the error (Unavailable) names the step and the path.
absl::Status PublishFile(const std::string& temporary, const std::string& path);

// Writes `contents` to TemporaryPathOf(path) and publishes it as `path` (PublishFile).
// Unavailable naming the path on failure, after which `path` is unchanged and no temporary is
// left behind.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace granary

#endif  // GRANARY_COMMON_ATOMIC_FILE_H_
