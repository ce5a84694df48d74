// Same-host links over ZeroMQ's ipc:// transport (Unix domain sockets) instead of loopback TCP.
//
// A server whose --ipc is on (the default) binds, beside its TCP port, a socket file in a
// private folder (mode 0700) and advertises it in its registration (NodeInfo.ipc_endpoint)
// together with the identity of its host (NodeInfo.host_id). A worker whose host has the same
// identity connects to that file; every other worker, and every worker with --ipc off,
// connects over TCP. On one host ipc spares large messages the TCP stack: 10-20 % less CPU per
// 12 MB request than loopback TCP (docs/performance.md, "Transport"). CURVE and the ZAP handler
// apply to ipc links exactly as to TCP ones: they are a property of the socket, not of the
// transport.
//
// Thread-safe: the functions keep no state.
#ifndef GRANARY_COMMON_IPC_ENDPOINT_H_
#define GRANARY_COMMON_IPC_ENDPOINT_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "common/proto/message.pb.h"
#include "zmq.hpp"

namespace granary {

// The longest socket file path a Unix domain socket address holds (sockaddr_un.sun_path less
// its terminating zero, on Linux).
inline constexpr size_t kMaxIpcPathBytes = 107;

// What makes two processes "on the same host" for ipc: the kernel's boot id and the host name
// ("<boot id>/<host name>"); two containers on one kernel with different host names count as
// different hosts, since they need not see each other's files. Empty if either cannot be
// read: such a process neither advertises nor uses ipc.
std::string LocalHostId();

// Makes a new private folder (mode 0700, by mkdtemp) for a server's socket file:
// <parent>/granary-ipc-XXXXXX, `parent` empty meaning $TMPDIR, else /tmp. A runtime folder, not
// the data folder: a socket file is not data, and copying a data folder (a backup, a model
// handed on) must not meet one; /tmp also keeps the path short. The caller removes it when done.
// Unavailable naming the folder if it cannot be made.
absl::StatusOr<std::string> MakeIpcDir(const std::string& parent);

// Binds `socket` to the socket file <dir>/<name> (ipc://..., the path made absolute), first
// creating `dir` (and its parents) and making it mode 0700, so that only this user can connect, and
// removing a stale file of that name left by a killed process. Returns the endpoint
// ("ipc://<path>"). InvalidArgument naming the path if it is longer than kMaxIpcPathBytes;
// Unavailable naming the folder or endpoint if the folder cannot be made private or the bind fails.
absl::StatusOr<std::string> BindIpc(zmq::socket_t& socket, const std::string& dir,
                                    const std::string& name);

// The endpoint a node on the host `local_host_id` connects to `server` on: its ipc endpoint
// if it advertised one, runs on the same host (equal, non-empty host ids) and its socket file
// is visible here, else tcp://host:port.
std::string ServerEndpoint(const proto::NodeInfo& server, const std::string& local_host_id);

}  // namespace granary

#endif  // GRANARY_COMMON_IPC_ENDPOINT_H_
