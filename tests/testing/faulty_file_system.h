// FaultyFileSystem: a RocksDB file system that can be told the disk is full, for testing how
// the server reports and survives write failures. Wraps the default file system.
//
// Thread-safe: the fault switch is atomic.
#ifndef GRANARY_TESTS_TESTING_FAULTY_FILE_SYSTEM_H_
#define GRANARY_TESTS_TESTING_FAULTY_FILE_SYSTEM_H_

#include <atomic>
#include <memory>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace granary {

class FaultyFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FaultyFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "FaultyFileSystem"; }

  // While true, creating or appending to files fails with "No space left on device".
  void set_disk_full(bool full) { disk_full_ = full; }
  bool disk_full() const { return disk_full_.load(); }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* debug) override;

 private:
  std::atomic<bool> disk_full_{false};
};

// An Env doing its file I/O through `fs`.
std::unique_ptr<rocksdb::Env> NewEnvWithFileSystem(std::shared_ptr<FaultyFileSystem> fs);

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_FAULTY_FILE_SYSTEM_H_
