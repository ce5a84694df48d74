// How Granary opens ZeroMQ sockets: one place for the options every socket must have.
// Thread-safe: functions act only on the socket passed in (which the caller owns).
#ifndef GRANARY_COMMON_SOCKET_OPTIONS_H_
#define GRANARY_COMMON_SOCKET_OPTIONS_H_

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "zmq.hpp"

namespace granary {

// Linger 0 (closing never blocks on unsent data: a dead peer must not hang shutdown),
// unbounded high-water marks (a data-plane message is never silently dropped; memory is
// bounded by the caller's outstanding requests instead) and large kernel buffers.
void ConfigureSocket(zmq::socket_t& socket);

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
