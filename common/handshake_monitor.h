// HandshakeMonitor: logs the peers a CURVE server socket drops during the handshake.
//
// A peer without the cluster's keys never reaches the ZAP handler (common/zap_handler.h) if it
// fails the CURVE handshake itself: it speaks no CURVE (a plain ZeroMQ client, a port
// scanner), or it encrypts to another server key. ZeroMQ then closes the connection silently;
// this monitor (zmq_socket_monitor) sees it and logs the peer's IP address in the words of
// every rejection ("<receiver> rejected a peer at ADDRESS: it does not hold the cluster's
// CURVE keys (...)"), once per address and never more than RejectionLog::kMaxPeers addresses
// (common/message.h): a peer retrying from ever new source ports costs one line. Peers the ZAP
// handler refuses after a complete handshake are its to log, not this monitor's.
//
// How the address is found: ZeroMQ's (version 1) events name only the bound endpoint, so the
// monitor asks the kernel for the peer of each accepted connection's descriptor
// (getpeername) when the ACCEPTED event arrives, and names it when that connection's
// handshake fails. A connection already closed by then is logged as "unknown address".
// Assumes the context has one I/O thread (as every Granary role's has), so that a failed
// handshake's event is followed by its own DISCONNECTED event.
//
// Thread-safety: the monitor runs on its own thread with an inproc PAIR socket; the object is
// only built and destroyed. Build it on the thread that owns `socket`, before that socket is
// used elsewhere; destroy it before the socket (declare it after the socket). The destructor
// stops the thread within kHandshakeMonitorStopCheck.
#ifndef GRANARY_COMMON_HANDSHAKE_MONITOR_H_
#define GRANARY_COMMON_HANDSHAKE_MONITOR_H_

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "common/curve_keys.h"
#include "common/message.h"
#include "zmq.hpp"

namespace granary {

// How often the monitor thread looks whether it must stop: bounds the destructor's wait.
inline constexpr std::chrono::milliseconds kHandshakeMonitorStopCheck{100};

class HandshakeMonitor {
 public:
  // Watches `socket`, a CURVE server socket of `context` (ConfigureCurveServer); `receiver`
  // names the node in log lines ("server", "scheduler"). Without keys (an unauthenticated
  // cluster) it does nothing.
  HandshakeMonitor(zmq::context_t* context, zmq::socket_t& socket, std::string receiver,
                   const std::optional<CurveKeys>& curve);
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;

  // Connections dropped during the CURVE handshake so far, logged or not (for tests and the
  // log). Does not count the ZAP handler's refusals.
  int dropped() const { return dropped_.load(); }

 private:
  void Serve(zmq::socket_t monitor);
  // Reads one event from `monitor` and acts on it; false if none was there.
  bool HandleOne(zmq::socket_t& monitor);

  RejectionLog rejections_;
  std::atomic<bool> stop_{false};
  std::atomic<int> dropped_{0};
  // Serve's thread only: the peer address of each open connection, by descriptor (bounded by
  // the process's open descriptors: an entry leaves with its DISCONNECTED event), and the
  // reason of a handshake that failed and whose connection's DISCONNECTED is next.
  absl::flat_hash_map<int, std::string> peer_of_fd_;
  std::optional<std::string> failed_handshake_;
  std::thread thread_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_HANDSHAKE_MONITOR_H_
