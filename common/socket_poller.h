// SocketPoller: waits for input on a fixed set of ZeroMQ sockets with one poll(2) per sleep,
// for threads on the request path that serve several sockets (a server's forwarding thread, a
// worker's channel of one DEALER per server).
//
// Why not zmq_poll: before and after it sleeps, zmq_poll asks every socket for ZMQ_EVENTS,
// and each ask of a socket with no pending command is a system call (poll(2) on the socket's
// mailbox, plus a getpid(2) fork check). A round trip of a small request through a server
// polling three sockets and a worker polling one made 22 poll(2) calls against the raw
// DEALER/ROUTER pair's 13 (strace, 1,000 keys; docs/performance.md, "Where the time goes").
// SocketPoller asks only the sockets that may hold input nobody has seen (the ZMQ_FD contract:
// the descriptor signals only new notices, so a socket must be asked after any send or
// receive before its descriptor is trusted again), then sleeps on all descriptors at once.
//
// Use: Wait, then TryReceive each socket for which MayHaveInput; call Sent(i) after every send
// on socket i (a send may take in the notice of arrived input, which the descriptor then no
// longer shows). A socket on which TryReceive found nothing, and nothing happened since, is
// trusted to its descriptor until it signals.
//
// Thread-compatible: one thread at a time uses a poller and its sockets.
#ifndef GRANARY_COMMON_SOCKET_POLLER_H_
#define GRANARY_COMMON_SOCKET_POLLER_H_

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "zmq.hpp"

namespace granary {

class SocketPoller {
 public:
  // Watches `sockets` (not owned; they must outlive the poller), indexed as given. Every
  // socket starts unasked: the first Wait asks each.
  explicit SocketPoller(std::vector<zmq::socket_t*> sockets);
  SocketPoller(const SocketPoller&) = delete;
  SocketPoller& operator=(const SocketPoller&) = delete;

  // Returns true at once if an unasked socket has a message waiting; otherwise sleeps until a
  // socket's descriptor signals (true) or `timeout` passes (false; negative: no timeout). A
  // signal interrupting the sleep (EINTR) returns false, as a timeout. Afterwards
  // MayHaveInput says which sockets to TryReceive. Throws zmq::error_t if a socket fails
  // (e.g. its context was terminated).
  bool Wait(std::chrono::milliseconds timeout);

  // True unless socket `i` was found empty since its last message, send or signal.
  bool MayHaveInput(size_t i) const { return unasked_[i]; }

  // Receives one whole message from socket `i` into *frames (cleared first) without
  // blocking. False, and socket `i` is trusted to its descriptor again, if none was waiting.
  bool TryReceive(size_t i, std::vector<zmq::message_t>* frames);

  // Sleeps on socket `i` alone until a whole message arrives (true, into *frames, cleared
  // first) or `timeout` passes (false). ZeroMQ's own blocking receive: for one socket it sleeps
  // and wakes with fewer system calls than Wait and TryReceive. The other sockets' state is
  // untouched; input arriving on them meanwhile waits for a later Wait. Sets the socket's
  // ZMQ_RCVTIMEO. Throws zmq::error_t if the socket fails.
  bool Receive(size_t i, std::vector<zmq::message_t>* frames, std::chrono::milliseconds timeout);

  // Socket `i` was sent on: it is asked again before the next sleep.
  void Sent(size_t i) { unasked_[i] = true; }

 private:
  std::vector<zmq::socket_t*> sockets_;
  std::vector<pollfd> descriptors_;  // each socket's ZMQ_FD, by index
  std::vector<bool> unasked_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_SOCKET_POLLER_H_
