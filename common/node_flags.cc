#include "common/node_flags.h"

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/security_flags.h"
#include "common/socket_options.h"
#include "glog/logging.h"

DEFINE_string(scheduler, "", "host:port of the scheduler (required).");
DEFINE_string(cluster_id, "granary", "Must match the scheduler's --cluster_id.");
DEFINE_string(host, "127.0.0.1", "Address this node listens on and advertises.");
DEFINE_double(heartbeat_interval, 1.0, "Seconds between heartbeats to the scheduler.");
DEFINE_double(heartbeat_timeout, 5.0, "Seconds of scheduler silence after which it is lost.");
DEFINE_double(register_timeout, 60.0, "Seconds to wait for the cluster to form.");
DEFINE_bool(ipc, true,
            "Same-host links over Unix domain sockets (common/ipc_endpoint.h): a server also "
            "serves on a socket file in a private temp folder (--ipc_dir) and a worker on its "
            "host connects "
            "there instead of to its TCP port: 10-20 % less CPU than loopback TCP for large "
            "requests (docs/performance.md). Off: TCP only.");
DEFINE_bool(keep_freed_memory, true,
            "Keep freed memory for the next large message instead of page-faulting every "
            "request in anew (KeepFreedMessageMemory, common/socket_options.h: messages up to "
            "32 MiB from malloc's heaps, whose pages each thread's arena keeps, and up to 256 MiB "
            "kept free in the main arena; docs/performance.md). Off: glibc's defaults.");

namespace granary {

void KeepFreedMemoryIfFlagged() {
  if (FLAGS_keep_freed_memory && !KeepFreedMessageMemory()) {
    LOG(WARNING) << "--keep_freed_memory: glibc refused a malloc setting; running with its "
                    "defaults";
  }
}

absl::StatusOr<SchedulerClientOptions> SchedulerClientOptionsFromFlags(proto::Role role, int port) {
  if (FLAGS_scheduler.empty()) return absl::InvalidArgumentError("--scheduler is required");
  SchedulerClientOptions options;
  options.scheduler_address = FLAGS_scheduler;
  options.cluster_id = FLAGS_cluster_id;
  options.role = role;
  options.host = FLAGS_host;
  options.port = port;
  options.heartbeat_interval = absl::Seconds(FLAGS_heartbeat_interval);
  options.heartbeat_timeout = absl::Seconds(FLAGS_heartbeat_timeout);
  options.register_timeout = absl::Seconds(FLAGS_register_timeout);
  absl::StatusOr<std::optional<CurveKeys>> curve = CurveKeysFromFlags();
  if (!curve.ok()) return curve.status();
  options.curve = *std::move(curve);
  absl::StatusOr<SocketLimits> limits = SocketLimitsFromFlags();
  if (!limits.ok()) return limits.status();
  options.socket_limits = *limits;
  return options;
}

}  // namespace granary
