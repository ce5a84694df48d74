#include "scheduler/scheduler_socket.h"

#include <iterator>
#include <vector>

#include "common/curve_keys.h"
#include "common/socket_options.h"
#include "glog/logging.h"

namespace granary {

SchedulerSocket::SchedulerSocket(zmq::context_t* context, std::string cluster_id,
                                 const std::optional<CurveKeys>& curve, const SocketLimits& limits)
    : cluster_id_(std::move(cluster_id)),
      router_(*context, zmq::socket_type::router),
      handshake_monitor_(context, router_, "scheduler", curve),
      rejections_("scheduler") {
  ConfigureSocket(router_, limits);
  ConfigureCurveServer(router_, curve);
}

absl::StatusOr<int> SchedulerSocket::Bind(const std::string& host, int port) {
  return BindTcp(router_, host, port);
}

void SchedulerSocket::Poll(absl::Duration timeout) {
  zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
  PollSockets(&item, 1, absl::ToChronoMilliseconds(timeout));
}

bool SchedulerSocket::ReceiveOne(std::string* routing_id, Message* message, bool* decoded) {
  std::vector<zmq::message_t> frames;
  zmq::recv_result_t received =
      zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
  if (!received) return false;
  *routing_id = frames[0].to_string();
  std::string peer = frames.size() > 1 ? PeerAddress(frames[1]) : "unknown peer";
  frames.erase(frames.begin());
  absl::Status status = DecodeMessage(std::move(frames), cluster_id_, peer, message);
  *decoded = status.ok();
  if (IsRejection(status)) {
    rejections_.Log(peer, status);
    Send(*routing_id, MakeRejectionHeader(message->header));
  } else if (!status.ok()) {
    LOG(ERROR) << "scheduler rejected a message: " << status.message();
    SendError(*routing_id, message->header, std::string(status.message()));
  }
  return true;
}

proto::Header SchedulerSocket::NewHeader(proto::Command command) const {
  return MakeHeader(command, cluster_id_, proto::SCHEDULER, 0);
}

void SchedulerSocket::Send(const std::string& routing_id, proto::Header header) {
  zmq::message_t id(routing_id.data(), routing_id.size());
  absl::Status status = SendMessage(router_, Message{std::move(header), {}, {}}, &id);
  if (!status.ok()) LOG(ERROR) << "scheduler: " << status.message();
}

void SchedulerSocket::Acknowledge(const std::string& routing_id, const proto::Header& request) {
  Send(routing_id, MakeReplyHeader(request, proto::ACK, cluster_id_, proto::SCHEDULER, 0));
}

void SchedulerSocket::SendError(const std::string& routing_id, const proto::Header& request,
                                const std::string& error) {
  proto::Header reply =
      MakeReplyHeader(request, proto::ERROR_REPLY, cluster_id_, proto::SCHEDULER, 0);
  reply.set_error(error);
  Send(routing_id, std::move(reply));
}

}  // namespace granary
