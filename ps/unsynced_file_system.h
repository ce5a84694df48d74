// UnsyncedFileSystem: the RocksDB file system of a server's row store. It forwards everything
// to the file system below but skips syncs (fsync, fdatasync, sync_file_range of files and
// folders): a server's promise is its consistent checkpoints (DESIGN.md "Durability and
// recovery"), not the live database, which a crash rolls back from anyway. Syncs of the live
// database only made writers wait for the disk: every spilled push log (a file to ingest,
// then the MANIFEST) waited on two of them, which cost a fifth of the spiller's time.
// A checkpoint is made durable afterwards by SyncFolderFiles (common/atomic_file.h).
//
// What a kill -9 leaves is intact either way (the kernel still holds the written pages); a
// machine crash may lose the live database's recent writes, and recovery restores the newest
// checkpoint.
//
// Thread-safe as the file system below: it keeps no state of its own.
#ifndef GRANARY_PS_UNSYNCED_FILE_SYSTEM_H_
#define GRANARY_PS_UNSYNCED_FILE_SYSTEM_H_

#include <memory>
#include <string>

#include "rocksdb/file_system.h"

namespace granary {

class UnsyncedFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit UnsyncedFileSystem(const std::shared_ptr<rocksdb::FileSystem>& target)
      : FileSystemWrapper(target) {}
  const char* Name() const override { return "UnsyncedFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* debug) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* debug) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* debug) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* debug) override;
};

}  // namespace granary

#endif  // GRANARY_PS_UNSYNCED_FILE_SYSTEM_H_
