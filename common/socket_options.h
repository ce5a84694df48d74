// How Granary opens ZeroMQ sockets: one place for the options every socket must have.
// Thread-safe: functions act only on the socket passed in (which the caller owns).
#ifndef GRANARY_COMMON_SOCKET_OPTIONS_H_
#define GRANARY_COMMON_SOCKET_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "zmq.hpp"

namespace granary {

// The bounds every socket gets, so that no peer can make a node queue or allocate without limit.
struct SocketLimits {
  // ZMQ_MAXMSGSIZE: the largest message part (frame) accepted from a peer; ZeroMQ drops the
  // connection of a peer that sends a larger one (a well-behaved DEALER then reconnects). At
  // least the server's max_request_bytes, so every request it admits fits in a frame.
  int64_t max_message_bytes = int64_t{1} << 30;
  // ZMQ_RCVHWM: messages queued from one peer before ZeroMQ stops reading its connection
  // (TCP backpressure: the peer's own queue grows, not ours).
  int receive_hwm = 10000;
  // ZMQ_SNDHWM of ROUTER sockets: replies queued for one peer that does not read them. Past
  // it a ROUTER drops them (ROUTER_MANDATORY stays off: with it a full peer would block the
  // sending loop for everyone), and the peer's request fails by its own deadline (KVWorker's
  // request_timeout, the scheduler client's). DEALER and other sockets keep an unbounded send
  // queue: there a full queue would block the sender instead of dropping, and what they queue
  // is bounded by their own outstanding requests.
  int router_send_hwm = 10000;
};

// The smallest max_message_bytes a process accepts (common/security_flags.h): every header
// Granary sends, a cluster view with its table configs included, is far below it.
constexpr int64_t kMinMaxMessageBytes = int64_t{1} << 20;

// Linger 0 (closing never blocks on unsent data: a dead peer must not hang shutdown), the
// bounds of `limits` (see SocketLimits) and large kernel buffers.
void ConfigureSocket(zmq::socket_t& socket, const SocketLimits& limits = SocketLimits());

// ZeroMQ receives every message into memory from malloc. glibc serves a large one from fresh
// pages (an mmap, or a new heap of a thread's arena) and hands them back to the kernel when it
// is freed, so each large request's bytes are page-faulted in anew (10 % of the samples of a
// 4M-key push over TCP, all on the I/O thread that receives it; docs/performance.md). This
// makes the process keep freed memory for the next message instead, with every thread still
// in its own malloc arena: every allocation up to glibc's largest mmap threshold
// (kMallocMmapThreshold, 32 MiB) comes from an arena's heap; up to kMallocKeptFreeBytes
// (256 MiB) of freed memory stays at the top of the main arena (M_TRIM_THRESHOLD); and a top
// pad of one whole thread heap (M_TOP_PAD, kMallocTopPadBytes: glibc's HEAP_MAX_SIZE on 64-bit
// hosts) stops glibc from unmapping a thread arena's heap when the last message in it is freed
// or from shrinking it, so a thread arena keeps the pages of its largest burst of messages.
// Call once at the start of main(), before any thread starts. Returns false if glibc refused
// a setting (the process then runs with glibc's defaults for it).
inline constexpr int kMallocMmapThreshold = 32 << 20;
inline constexpr int kMallocKeptFreeBytes = 256 << 20;
inline constexpr int kMallocTopPadBytes = 2 * kMallocMmapThreshold;
bool KeepFreedMessageMemory();

// "tcp://host:port".
std::string TcpEndpoint(const std::string& host, int port);

// Binds `socket` to tcp://host:port; port 0 picks a free port. Returns the bound port, or
// Unavailable naming the endpoint (e.g. port in use).
absl::StatusOr<int> BindTcp(zmq::socket_t& socket, const std::string& host, int port);

// zmq::poll that treats an interrupted call (EINTR: a signal arrived) as a timeout instead
// of throwing, so that signal handlers never crash a node. Returns the number of ready
// items; a negative timeout waits indefinitely.
int PollSockets(zmq::pollitem_t* items, size_t count, std::chrono::milliseconds timeout);

// Splits "host:port". InvalidArgument naming `address` if it is not of that form.
absl::Status ParseHostPort(const std::string& address, std::string* host, int* port);

}  // namespace granary

#endif  // GRANARY_COMMON_SOCKET_OPTIONS_H_
