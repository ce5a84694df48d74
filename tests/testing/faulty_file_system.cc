#include "tests/testing/faulty_file_system.h"

namespace granary {
namespace {

class FaultyWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, const FaultyFileSystem* fs)
      : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
    if (fs_->disk_full()) return rocksdb::IOStatus::NoSpace("simulated full disk");
    return FSWritableFileOwnerWrapper::Append(data, options, debug);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* debug) override {
    if (fs_->disk_full()) return rocksdb::IOStatus::NoSpace("simulated full disk");
    return FSWritableFileOwnerWrapper::Append(data, options, info, debug);
  }

 private:
  const FaultyFileSystem* fs_;
};

}  // namespace

rocksdb::IOStatus FaultyFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* debug) {
  if (disk_full()) return rocksdb::IOStatus::NoSpace("simulated full disk");
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus status = target()->NewWritableFile(name, options, &file, debug);
  if (status.ok()) result->reset(new FaultyWritableFile(std::move(file), this));
  return status;
}

std::unique_ptr<rocksdb::Env> NewEnvWithFileSystem(std::shared_ptr<FaultyFileSystem> fs) {
  return rocksdb::NewCompositeEnv(fs);
}

}  // namespace granary
