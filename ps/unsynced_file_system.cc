#include "ps/unsynced_file_system.h"

#include <memory>
#include <string>

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

}  // namespace granary
