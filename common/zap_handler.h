// ZapHandler: the binding side's check of who may connect (ZeroMQ's ZAP, RFC 27), and its log.
//
// Without a handler a CURVE server lets in any client that knows its public key. With one, a
// CURVE server socket of the context asks it about every peer that completed the handshake;
// this one accepts only the cluster's own public key (common/curve_keys.h: every member holds
// the cluster keypair), so a peer must hold the secret key too. A rejected peer gets nothing
// (ZeroMQ closes the connection) and is logged with its address, once per address
// (RejectionLog, common/message.h): an attacker retrying in a loop cannot flood the log. (A peer
// without the server's public key fails the handshake before ZAP: common/handshake_monitor.h
// logs it.)
//
// One per zmq::context_t that has CURVE server sockets: construct it in the role's main before
// binding. Thread-safe: the handler runs on its own thread; the object is only built and
// destroyed.
#ifndef GRANARY_COMMON_ZAP_HANDLER_H_
#define GRANARY_COMMON_ZAP_HANDLER_H_

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "common/curve_keys.h"
#include "common/message.h"
#include "zmq.hpp"

namespace granary {

class ZapHandler {
 public:
  // Serves ZAP in `context` with the cluster's keys; without keys (an unauthenticated
  // cluster) it does nothing. `receiver` names the node in log lines ("server", "scheduler").
  ZapHandler(zmq::context_t* context, const std::optional<CurveKeys>& curve, std::string receiver);
  ~ZapHandler();  // Stops the thread (within kStopCheck).
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Peers rejected so far (for tests and the log).
  int rejected() const { return rejected_.load(); }

 private:
  void Serve(zmq::socket_t socket);
  // Answers one request read from `socket`; false if no complete request was there.
  bool AnswerOne(zmq::socket_t& socket);

  std::string cluster_public_key_;  // 32 bytes, binary
  std::atomic<bool> stop_{false};
  std::atomic<int> rejected_{0};
  RejectionLog rejections_;
  std::thread thread_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_ZAP_HANDLER_H_
