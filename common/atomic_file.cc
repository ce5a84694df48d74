#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace granary {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path, int error) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(error)));
}

// The folder that holds `path` ("." for a bare file name).
std::string FolderOf(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace

std::string TemporaryPathOf(const std::string& path) { return path + ".tmp"; }

absl::Status SyncPath(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open to sync", path, errno);
  const int synced = fsync(fd);
  const int sync_errno = errno;
  close(fd);
  if (synced != 0) return ErrnoError("cannot fsync", path, sync_errno);
  return absl::OkStatus();
}

absl::Status SyncFolderFiles(const std::string& folder) {
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
  return SyncPath(FolderOf(folder));
}

absl::Status PublishFile(const std::string& temporary, const std::string& path) {
  absl::Status status = SyncPath(temporary);
  if (status.ok() && std::rename(temporary.c_str(), path.c_str()) != 0) {
    status = ErrnoError(absl::StrCat("cannot rename ", temporary, " to"), path, errno);
  }
  if (!status.ok()) {
    std::remove(temporary.c_str());
    return status;
  }
  return SyncPath(FolderOf(path));
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  const std::string temporary = TemporaryPathOf(path);
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) return ErrnoError("cannot create", temporary, errno);
  const bool written = std::fwrite(contents.data(), 1, contents.size(), file) == contents.size();
  const int write_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed) {
    std::remove(temporary.c_str());
    return ErrnoError("cannot write", temporary, written ? errno : write_errno);
  }
  return PublishFile(temporary, path);
}

}  // namespace granary
