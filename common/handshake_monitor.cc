#include "common/handshake_monitor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/socket_options.h"
#include "glog/logging.h"

namespace granary {
namespace {

// The events watched: accepted and closed connections (to know each one's peer) and the three
// ways a handshake fails.
constexpr int kWatchedEvents =
    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
// A version 1 event's first frame: a 16-bit event number, then a 32-bit value (a descriptor,
// an errno or a ZMQ_PROTOCOL_ERROR_* code); the second frame is the endpoint.
constexpr size_t kEventFrameBytes = sizeof(uint16_t) + sizeof(uint32_t);
constexpr char kUnknownAddress[] = "unknown address";

std::string MonitorEndpoint(const void* owner) {
  return absl::StrCat("inproc://granary-handshake-monitor-", reinterpret_cast<uintptr_t>(owner));
}

// The IP address of the peer of TCP connection `fd`, or kUnknownAddress.
std::string PeerIp(int fd) {
  sockaddr_storage address;
  socklen_t length = sizeof(address);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return kUnknownAddress;
  char text[INET6_ADDRSTRLEN] = {};
  const void* ip = nullptr;
  if (address.ss_family == AF_INET) {
    ip = &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr;
  } else if (address.ss_family == AF_INET6) {
    ip = &reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr;
  }
  if (ip == nullptr || inet_ntop(address.ss_family, ip, text, sizeof(text)) == nullptr) {
    return kUnknownAddress;
  }
  return text;
}

// Why a handshake failed, from a HANDSHAKE_FAILED_NO_DETAIL or _PROTOCOL event's value.
std::string HandshakeFailure(uint16_t event, uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
    return absl::StrCat("the connection closed during the CURVE handshake: ", std::strerror(value));
  }
  switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "it does not speak CURVE";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
      return "the CURVE handshake failed to decrypt: another server key";
    default:
      return absl::StrFormat("the CURVE handshake failed: ZeroMQ protocol error 0x%08x", value);
  }
}

}  // namespace

HandshakeMonitor::HandshakeMonitor(zmq::context_t* context, zmq::socket_t& socket,
                                   std::string receiver, const std::optional<CurveKeys>& curve)
    : rejections_(std::move(receiver), RejectionLog::Rejected::kPeer) {
  if (!curve.has_value()) return;
  const std::string endpoint = MonitorEndpoint(this);
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), kWatchedEvents) != 0) {
    LOG(ERROR) << "cannot monitor CURVE handshakes at " << endpoint << ": "
               << zmq_strerror(zmq_errno()) << "; peers dropped in the handshake are not logged";
    return;
  }
  zmq::socket_t monitor(*context, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::linger, 0);
  monitor.connect(endpoint);
  thread_ = std::thread(&HandshakeMonitor::Serve, this, std::move(monitor));
}

HandshakeMonitor::~HandshakeMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void HandshakeMonitor::Serve(zmq::socket_t monitor) {
  while (!stop_) {
    zmq::pollitem_t item{monitor.handle(), 0, ZMQ_POLLIN, 0};
    if (PollSockets(&item, 1, kHandshakeMonitorStopCheck) <= 0) continue;
    while (HandleOne(monitor)) {
    }
  }
}

bool HandshakeMonitor::HandleOne(zmq::socket_t& monitor) {
  zmq::message_t event_frame;
  if (!monitor.recv(event_frame, zmq::recv_flags::dontwait)) return false;
  // The endpoint frame names only our own bound endpoint: read and dropped.
  while (monitor.get(zmq::sockopt::rcvmore)) {
    zmq::message_t more;
    if (!monitor.recv(more, zmq::recv_flags::dontwait)) break;
  }
  if (event_frame.size() != kEventFrameBytes) return true;
  uint16_t event;
  uint32_t value;
  std::memcpy(&event, event_frame.data(), sizeof(event));
  std::memcpy(&value, static_cast<const char*>(event_frame.data()) + sizeof(event), sizeof(value));
  switch (event) {
    case ZMQ_EVENT_ACCEPTED:
      peer_of_fd_[static_cast<int>(value)] = PeerIp(static_cast<int>(value));
      break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      ++dropped_;
      failed_handshake_ = HandshakeFailure(event, value);
      break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      failed_handshake_.reset();  // the ZAP handler refused it, and logged it
      break;
    case ZMQ_EVENT_DISCONNECTED: {
      auto peer = peer_of_fd_.find(static_cast<int>(value));
      const std::string address = peer != peer_of_fd_.end() ? peer->second : kUnknownAddress;
      if (peer != peer_of_fd_.end()) peer_of_fd_.erase(peer);
      if (failed_handshake_.has_value()) {
        rejections_.Log(address,
                        absl::PermissionDeniedError(absl::StrCat(
                            "it does not hold the cluster's CURVE keys: ", *failed_handshake_)));
        failed_handshake_.reset();
      }
      break;
    }
    default:
      break;
  }
  return true;
}

}  // namespace granary
