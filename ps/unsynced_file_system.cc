#include "ps/unsynced_file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace granary {
namespace {

class UnsyncedWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  explicit UnsyncedWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file)
      : FSWritableFileOwnerWrapper(std::move(file)) {}

  rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                              rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  bool IsSyncThreadSafe() const override { return true; }
};

class UnsyncedDirectory : public rocksdb::FSDirectoryWrapper {
 public:
  explicit UnsyncedDirectory(std::unique_ptr<rocksdb::FSDirectory> directory)
      : FSDirectoryWrapper(std::move(directory)) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions&, rocksdb::IODebugContext*,
                                        const rocksdb::DirFsyncOptions&) override {
    return rocksdb::IOStatus::OK();
  }
};

// Opens a writable file through `open(&file)` (the target's call) and wraps it; errors pass
// through.
template <typename Open>
rocksdb::IOStatus OpenWrapped(Open open, std::unique_ptr<rocksdb::FSWritableFile>* result) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus status = open(&file);
  if (status.ok()) *result = std::make_unique<UnsyncedWritableFile>(std::move(file));
  return status;
}

absl::Status SyncPath(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, " to sync it: ", std::strerror(errno)));
  }
  const int synced = fsync(fd);
  const int sync_errno = errno;
  close(fd);
  if (synced != 0) {
    return absl::UnavailableError(
        absl::StrCat("fsync of ", path, " failed: ", std::strerror(sync_errno)));
  }
  return absl::OkStatus();
}

}  // namespace

rocksdb::IOStatus UnsyncedFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* debug) {
  return OpenWrapped(
      [&](auto* file) { return target()->NewWritableFile(name, options, file, debug); }, result);
}

rocksdb::IOStatus UnsyncedFileSystem::ReopenWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* debug) {
  return OpenWrapped(
      [&](auto* file) { return target()->ReopenWritableFile(name, options, file, debug); }, result);
}

rocksdb::IOStatus UnsyncedFileSystem::ReuseWritableFile(
    const std::string& name, const std::string& old_name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* debug) {
  return OpenWrapped(
      [&](auto* file) { return target()->ReuseWritableFile(name, old_name, options, file, debug); },
      result);
}

rocksdb::IOStatus UnsyncedFileSystem::NewDirectory(const std::string& name,
                                                   const rocksdb::IOOptions& options,
                                                   std::unique_ptr<rocksdb::FSDirectory>* result,
                                                   rocksdb::IODebugContext* debug) {
  std::unique_ptr<rocksdb::FSDirectory> directory;
  rocksdb::IOStatus status = target()->NewDirectory(name, options, &directory, debug);
  if (status.ok()) *result = std::make_unique<UnsyncedDirectory>(std::move(directory));
  return status;
}

absl::Status SyncFolder(const std::string& folder) {
  std::error_code error;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot list ", folder, " to sync it: ", error.message()));
  }
  for (const std::string& file : files) {
    absl::Status status = SyncPath(file);
    if (!status.ok()) return status;
  }
  absl::Status status = SyncPath(folder);
  if (!status.ok()) return status;
  std::filesystem::path parent = std::filesystem::path(folder).parent_path();
  return SyncPath(parent.empty() ? "." : parent.string());
}

}  // namespace granary
