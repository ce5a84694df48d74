// SchedulerSocket: the scheduler's one ROUTER socket, the way out for everything it sends.
//
// Every component of the scheduler (scheduler/scheduler_impl.h) replies and notifies through
// it, so every header it sends carries the cluster id and the scheduler's role and rank 0.
// Failures to send are logged, not returned: a peer that went away is the membership's
// business (heartbeats), not the sender's.
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_SCHEDULER_SOCKET_H_
#define GRANARY_SCHEDULER_SCHEDULER_SOCKET_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/curve_keys.h"
#include "common/handshake_monitor.h"
#include "common/message.h"
#include "common/proto/message.pb.h"
#include "common/socket_options.h"
#include "zmq.hpp"

namespace granary {

class SchedulerSocket {
 public:
  // With `curve`, only peers holding the cluster's keys can connect (common/curve_keys.h); the
  // socket is bounded by `limits` (common/socket_options.h).
  SchedulerSocket(zmq::context_t* context, std::string cluster_id,
                  const std::optional<CurveKeys>& curve, const SocketLimits& limits);
  SchedulerSocket(const SchedulerSocket&) = delete;
  SchedulerSocket& operator=(const SchedulerSocket&) = delete;

  // Binds host:port (0: a free port). Returns the bound port; Unavailable if it cannot bind.
  absl::StatusOr<int> Bind(const std::string& host, int port);

  // Waits up to `timeout` for a message, then returns every message ready, decoded, as
  // (routing id, message) to `handle`. A message that fails to decode is logged and answered
  // with ERROR_REPLY; `handle` never sees it. A rejected one (IsRejection: wrong cluster id,
  // unparsable header) gets only "rejected", and is logged once per peer address.
  template <typename Handle>
  void ReceiveAll(absl::Duration timeout, Handle&& handle);

  // A header from the scheduler with `command`.
  proto::Header NewHeader(proto::Command command) const;
  void Send(const std::string& routing_id, proto::Header header);
  // Answers `request` with ACK.
  void Acknowledge(const std::string& routing_id, const proto::Header& request);
  // Answers `request` with ERROR_REPLY carrying `error`.
  void SendError(const std::string& routing_id, const proto::Header& request,
                 const std::string& error);

 private:
  // One ready message, or false if none is ready. A message that fails to decode is answered
  // here and returned with `decoded` false.
  bool ReceiveOne(std::string* routing_id, Message* message, bool* decoded);
  void Poll(absl::Duration timeout);

  const std::string cluster_id_;
  zmq::socket_t router_;
  // Logs peers router_ drops in the CURVE handshake. After router_: destroyed before it.
  HandshakeMonitor handshake_monitor_;
  RejectionLog rejections_;
};

template <typename Handle>
void SchedulerSocket::ReceiveAll(absl::Duration timeout, Handle&& handle) {
  Poll(timeout);
  std::string routing_id;
  Message message;
  bool decoded = false;
  while (ReceiveOne(&routing_id, &message, &decoded)) {
    if (decoded) handle(routing_id, std::move(message));
    message = Message();
  }
}

}  // namespace granary

#endif  // GRANARY_SCHEDULER_SCHEDULER_SOCKET_H_
