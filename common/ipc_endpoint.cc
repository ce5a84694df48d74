#include "common/ipc_endpoint.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/socket_options.h"

namespace granary {
namespace {
constexpr char kBootIdFile[] = "/proc/sys/kernel/random/boot_id";
constexpr char kIpcScheme[] = "ipc://";
constexpr char kIpcDirTemplate[] = "granary-ipc-XXXXXX";
constexpr char kDefaultTempDir[] = "/tmp";
}  // namespace

absl::StatusOr<std::string> MakeIpcDir(const std::string& parent) {
  std::string base = parent;
  if (base.empty()) {
    const char* temp = std::getenv("TMPDIR");
    base = temp != nullptr && temp[0] != '\0' ? temp : kDefaultTempDir;
  }
  std::string path = absl::StrCat(base, "/", kIpcDirTemplate);
  if (mkdtemp(path.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot make an ipc folder ", base, "/",
                                               kIpcDirTemplate, ": ", std::strerror(errno)));
  }
  return path;
}

std::string LocalHostId() {
  std::ifstream file(kBootIdFile);
  std::string boot_id;
  if (!std::getline(file, boot_id)) return "";
  boot_id = std::string(absl::StripAsciiWhitespace(boot_id));
  char host_name[HOST_NAME_MAX + 1] = {};
  if (boot_id.empty() || gethostname(host_name, sizeof host_name) != 0) return "";
  return absl::StrCat(boot_id, "/", host_name);
}

absl::StatusOr<std::string> BindIpc(zmq::socket_t& socket, const std::string& dir,
                                    const std::string& name) {
  std::error_code error;
  // Absolute, so that a worker started in another folder finds the same file.
  const std::string path = absl::StrCat(std::filesystem::absolute(dir, error).string(), "/", name);
  if (path.size() > kMaxIpcPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("ipc socket path ", path, " is ", path.size(), " bytes, over the ",
                     kMaxIpcPathBytes, " a Unix socket address holds: choose a shorter folder"));
  }
  std::filesystem::create_directories(dir, error);
  if (!error) {
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, error);
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot make ipc folder ", dir, " private (0700): ", error.message()));
  }
  // A killed server leaves its socket file behind; binding over it would fail.
  std::filesystem::remove(path, error);
  const std::string endpoint = absl::StrCat(kIpcScheme, path);
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot bind ", endpoint, ": ", e.what()));
  }
  return endpoint;
}

std::string ServerEndpoint(const proto::NodeInfo& server, const std::string& local_host_id) {
  const std::string& ipc = server.ipc_endpoint();
  std::error_code error;
  // The file must be visible here too: a container with a copied host name may not see it.
  if (!ipc.empty() && !local_host_id.empty() && server.host_id() == local_host_id &&
      absl::StartsWith(ipc, kIpcScheme) &&
      std::filesystem::is_socket(ipc.substr(sizeof kIpcScheme - 1), error)) {
    return ipc;
  }
  return TcpEndpoint(server.host(), server.port());
}

}  // namespace granary
