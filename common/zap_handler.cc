#include "common/zap_handler.h"

#include <array>
#include <chrono>
#include <iterator>
#include <vector>

#include "common/socket_options.h"
#include "glog/logging.h"
#include "zmq_addon.hpp"

namespace granary {
namespace {
// Where ZeroMQ looks for a context's ZAP handler (RFC 27).
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr char kZapVersion[] = "1.0";
// Frames of a ZAP request: version, request id, domain, address, identity, mechanism, then the
// mechanism's credentials (CURVE: the client's 32-byte public key).
constexpr size_t kCurveRequestFrames = 7;
constexpr size_t kVersionFrame = 0, kRequestIdFrame = 1, kAddressFrame = 3, kMechanismFrame = 5,
                 kCredentialsFrame = 6;
// How often the thread looks at stop_.
constexpr std::chrono::milliseconds kStopCheck{100};
}  // namespace

ZapHandler::ZapHandler(zmq::context_t* context, const std::optional<CurveKeys>& curve,
                       std::string receiver)
    : rejections_(std::move(receiver), RejectionLog::Rejected::kPeer) {
  if (!curve.has_value()) return;
  std::array<uint8_t, kCurveKeyBytes> key;
  CHECK(zmq_z85_decode(key.data(), curve->public_key.c_str()) != nullptr)
      << "cluster public key is not Z85 (LoadCurveKeys checks it)";
  cluster_public_key_.assign(reinterpret_cast<const char*>(key.data()), key.size());
  // Bound here, before the caller binds its CURVE sockets: no handshake can miss the handler.
  zmq::socket_t socket(*context, zmq::socket_type::rep);
  socket.set(zmq::sockopt::linger, 0);
  socket.bind(kZapEndpoint);
  thread_ = std::thread(&ZapHandler::Serve, this, std::move(socket));
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Serve(zmq::socket_t socket) {
  while (!stop_) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (PollSockets(&item, 1, kStopCheck) <= 0) continue;
    AnswerOne(socket);
  }
}

bool ZapHandler::AnswerOne(zmq::socket_t& socket) {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket, std::back_inserter(request), zmq::recv_flags::dontwait)) {
    return false;
  }
  // A REP socket must answer every request; a malformed one (only libzmq writes here) is
  // refused with the id it carried, if any.
  const bool well_formed = request.size() == kCurveRequestFrames &&
                           request[kVersionFrame].to_string_view() == kZapVersion;
  const bool member = well_formed && request[kMechanismFrame].to_string_view() == "CURVE" &&
                      request[kCredentialsFrame].to_string_view() == cluster_public_key_;
  const std::string address =
      request.size() > kAddressFrame ? request[kAddressFrame].to_string() : "unknown address";
  if (!member) {
    ++rejected_;
    rejections_.Log(address, absl::PermissionDeniedError(
                                 "it does not hold the cluster's CURVE keys: it presented a "
                                 "client key other than the cluster's"));
  }
  std::vector<zmq::message_t> reply;
  reply.emplace_back(std::string(kZapVersion));
  reply.emplace_back(request.size() > kRequestIdFrame ? request[kRequestIdFrame].to_string()
                                                      : std::string());
  reply.emplace_back(std::string(member ? "200" : "400"));
  reply.emplace_back(std::string(member ? "OK" : "rejected"));
  reply.emplace_back(std::string());  // user id
  reply.emplace_back(std::string());  // metadata
  zmq::send_multipart(socket, reply);
  return true;
}

}  // namespace granary
