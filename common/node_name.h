// Human-readable names of nodes and roles for logs and error messages.
// Thread-safe: pure functions.
#ifndef GRANARY_COMMON_NODE_NAME_H_
#define GRANARY_COMMON_NODE_NAME_H_

#include <string>

#include "common/proto/message.pb.h"

namespace granary {

// "server", "worker", "scheduler", "control" or "unknown".
std::string RoleName(proto::Role role);

// "server 1 (127.0.0.1:40123, pid 4242)"; the address part is omitted for nodes that do not
// listen.
std::string NodeName(const proto::NodeInfo& node);

}  // namespace granary

#endif  // GRANARY_COMMON_NODE_NAME_H_
