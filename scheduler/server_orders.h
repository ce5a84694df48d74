// ServerOrders: orders from the scheduler to every server (CHECKPOINT, SHRINK, EXPORT_DELTA),
// one round out at a time.
//
// A round sends the order to every server under one request id and collects the answers
// (ACK with the order's results, or ERROR_REPLY) by server rank. It fails on the first server
// that refuses or dies before answering, or once checkpoint_timeout passed without every
// answer. Answers to an earlier round are logged and dropped.
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_SERVER_ORDERS_H_
#define GRANARY_SCHEDULER_SERVER_ORDERS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/proto/message.pb.h"
#include "scheduler/membership.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_socket.h"

namespace granary {

class ServerOrders {
 public:
  // `options`, `socket` and `membership` must outlive this object.
  ServerOrders(const SchedulerOptions& options, SchedulerSocket& socket,
               const Membership& membership);
  ServerOrders(const ServerOrders&) = delete;
  ServerOrders& operator=(const ServerOrders&) = delete;

  // Whether a round is out (until Finish()).
  bool busy() const { return round_.has_value(); }
  // Starts a round: sends `order` (its request id is set here) to every server.
  // REQUIRES: !busy().
  void Send(proto::Header order);
  // An ACK or ERROR_REPLY from `server`.
  void HandleAnswer(const ClusterMember& server, const proto::Header& answer);
  // The round's error (a server refused, died or did not answer in time), or OK.
  // REQUIRES: busy().
  absl::Status Error() const;
  // Whether every server answered. REQUIRES: busy().
  bool Complete() const;
  // The answers, by server rank. REQUIRES: busy().
  const std::map<int, proto::Header>& answers() const { return round_->answers; }
  // Ends the round; answers still to come count as late.
  void Finish() { round_.reset(); }

 private:
  struct Round {
    proto::Command command = proto::COMMAND_UNKNOWN;
    uint64_t request_id = 0;
    std::map<int, proto::Header> answers;  // by server rank
    std::string error;                     // the first failure, naming the server
    absl::Time deadline;
  };

  const SchedulerOptions& options_;
  SchedulerSocket& socket_;
  const Membership& membership_;
  std::optional<Round> round_;
  uint64_t next_request_id_ = 1;
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_SERVER_ORDERS_H_
