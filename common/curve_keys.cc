#include "common/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"

namespace granary {
namespace {
// Owner read/write only: the key file is the cluster's membership.
constexpr mode_t kKeyFileMode = 0600;
constexpr mode_t kKeysDirMode = 0700;
// Any permission bit for group or others.
constexpr mode_t kGroupOrOtherBits = 077;

bool IsZ85Key(const std::string& text) {
  if (text.size() != kCurveKeyTextLength) return false;
  std::array<uint8_t, kCurveKeyBytes> decoded;
  return zmq_z85_decode(decoded.data(), text.c_str()) != nullptr;
}
}  // namespace

absl::StatusOr<CurveKeys> GenerateCurveKeys() {
  if (!zmq_has("curve")) {
    return absl::FailedPreconditionError("libzmq is built without CURVE: cannot generate keys");
  }
  char public_key[kCurveKeyTextLength + 1];
  char secret_key[kCurveKeyTextLength + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return absl::InternalError(absl::StrCat("zmq_curve_keypair: ", zmq_strerror(zmq_errno())));
  }
  return CurveKeys{public_key, secret_key};
}

std::string CurveKeyFilePath(const std::string& keys_dir) {
  return absl::StrCat(keys_dir, "/", kCurveKeyFileName);
}

absl::Status WriteCurveKeys(const std::string& keys_dir, const CurveKeys& keys) {
  if (mkdir(keys_dir.c_str(), kKeysDirMode) != 0 && errno != EEXIST) {
    return absl::UnavailableError(
        absl::StrCat("cannot create keys folder ", keys_dir, ": ", std::strerror(errno)));
  }
  const std::string path = CurveKeyFilePath(keys_dir);
  const std::string temporary = TemporaryPathOf(path);
  // Created 0600 from the start (not chmod after writing): the secret is never readable by
  // others, not even for a moment.
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, kKeyFileMode);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", temporary, ": ", std::strerror(errno)));
  }
  const std::string contents = absl::StrCat(keys.public_key, "\n", keys.secret_key, "\n");
  const bool written =
      write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
  const int write_errno = errno;
  const bool closed = close(fd) == 0;
  if (!written || !closed) {
    unlink(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot write ", temporary, ": ", std::strerror(write_errno)));
  }
  return PublishFile(temporary, path);
}

absl::StatusOr<CurveKeys> LoadCurveKeys(const std::string& keys_dir) {
  const std::string path = CurveKeyFilePath(keys_dir);
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(
        absl::StrCat("no CURVE key file ", path, " (--keys_dir): ", std::strerror(errno)));
  }
  if ((info.st_mode & kGroupOrOtherBits) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "CURVE key file %s has mode %04o: refused, it must be readable by its owner only "
        "(chmod 600)",
        path, info.st_mode & 07777));
  }
  std::ifstream in(path);
  CurveKeys keys;
  std::getline(in, keys.public_key);
  std::getline(in, keys.secret_key);
  if (!IsZ85Key(keys.public_key)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":1: not a CURVE public key (40 characters of Z85)"));
  }
  if (!IsZ85Key(keys.secret_key)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":2: not a CURVE secret key (40 characters of Z85)"));
  }
  return keys;
}

void ConfigureCurveServer(zmq::socket_t& socket, const std::optional<CurveKeys>& curve) {
  if (!curve.has_value()) return;
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, curve->secret_key);
}

void ConfigureCurveClient(zmq::socket_t& socket, const std::optional<CurveKeys>& curve) {
  if (!curve.has_value()) return;
  socket.set(zmq::sockopt::curve_serverkey, curve->public_key);
  socket.set(zmq::sockopt::curve_publickey, curve->public_key);
  socket.set(zmq::sockopt::curve_secretkey, curve->secret_key);
}

}  // namespace granary
