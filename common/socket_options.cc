#include "common/socket_options.h"

#include <malloc.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace granary {
namespace {
// Kernel socket buffers: large enough that a multi-megabyte frame streams without stalls.
constexpr int kSocketBufferBytes = 4 << 20;
}  // namespace

void ConfigureSocket(zmq::socket_t& socket, const SocketLimits& limits) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::maxmsgsize, limits.max_message_bytes);
  const bool router = socket.get(zmq::sockopt::type) == ZMQ_ROUTER;
  socket.set(zmq::sockopt::sndhwm, router ? limits.router_send_hwm : 0);
  socket.set(zmq::sockopt::rcvhwm, limits.receive_hwm);
  socket.set(zmq::sockopt::sndbuf, kSocketBufferBytes);
  socket.set(zmq::sockopt::rcvbuf, kSocketBufferBytes);
}

bool KeepFreedMessageMemory() {
  bool ok = mallopt(M_MMAP_THRESHOLD, kMallocMmapThreshold) == 1;
  ok &= mallopt(M_TRIM_THRESHOLD, kMallocKeptFreeBytes) == 1;
  ok &= mallopt(M_TOP_PAD, kMallocTopPadBytes) == 1;
  return ok;
}

std::string TcpEndpoint(const std::string& host, int port) {
  return absl::StrCat("tcp://", host, ":", port);
}

absl::StatusOr<int> BindTcp(zmq::socket_t& socket, const std::string& host, int port) {
  std::string endpoint = port == 0 ? absl::StrCat("tcp://", host, ":*") : TcpEndpoint(host, port);
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot bind ", endpoint, ": ", e.what()));
  }
  std::string bound = socket.get(zmq::sockopt::last_endpoint);
  size_t colon = bound.rfind(':');
  int bound_port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(bound.substr(colon + 1), &bound_port)) {
    return absl::InternalError(absl::StrCat("cannot read bound port from ", bound));
  }
  return bound_port;
}

int PollSockets(zmq::pollitem_t* items, size_t count, std::chrono::milliseconds timeout) {
  try {
    return zmq::poll(items, count, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw;
  }
}

absl::Status ParseHostPort(const std::string& address, std::string* host, int* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), port) || *port <= 0 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "' is not of the form host:port"));
  }
  *host = address.substr(0, colon);
  return absl::OkStatus();
}

}  // namespace granary
