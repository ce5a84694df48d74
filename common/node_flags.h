// Command-line flags shared by every cluster member (servers and workers), and their
// translation into SchedulerClientOptions. Only role main.cc files (and its test) include this.
#ifndef GRANARY_COMMON_NODE_FLAGS_H_
#define GRANARY_COMMON_NODE_FLAGS_H_

#include "absl/status/statusor.h"
#include "common/scheduler_client.h"
#include "gflags/gflags.h"

DECLARE_string(scheduler);
DECLARE_string(cluster_id);
DECLARE_string(host);
DECLARE_double(heartbeat_interval);
DECLARE_double(heartbeat_timeout);
DECLARE_double(register_timeout);
DECLARE_bool(keep_freed_memory);
DECLARE_bool(ipc);

namespace granary {

// Options for a node of `role` serving on `port` (0 for nodes that do not listen), from the
// flags above. InvalidArgument naming the flag ("--scheduler is required") when a flag every
// node needs is missing, so that each role's main reports it the same way. With --keys_dir
// (common/security_flags.h) the options carry the cluster's CURVE keys; a key file that cannot
// be loaded is its error (naming the file). The options carry the socket limits of
// --max_message_bytes, --receive_hwm and --send_hwm (common/security_flags.h; their errors).
absl::StatusOr<SchedulerClientOptions> SchedulerClientOptionsFromFlags(proto::Role role, int port);

// With --keep_freed_memory (default true), KeepFreedMessageMemory (common/socket_options.h);
// logs a warning if glibc refused it. Call at the start of main(), before any thread starts.
void KeepFreedMemoryIfFlagged();

}  // namespace granary

#endif  // GRANARY_COMMON_NODE_FLAGS_H_
