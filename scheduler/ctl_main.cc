// granary_ctl: operator commands sent to a running scheduler.
//   granary_ctl --scheduler=HOST:PORT shutdown     orderly shutdown of the whole cluster
//   granary_ctl --scheduler=HOST:PORT checkpoint   a consistent checkpoint now; prints its
//                                                  folder once the manifest is written
//   granary_ctl --keys_dir=DIR keygen               writes a fresh cluster keypair to
//                                                  DIR/cluster.curve (0600; common/curve_keys.h)
// With --keys_dir, shutdown and checkpoint authenticate with the cluster's keys.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/time/time.h"
#include "common/curve_keys.h"
#include "common/process_init.h"
#include "common/scheduler_client.h"
#include "common/security_flags.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_string(scheduler, "", "host:port of the scheduler.");
DEFINE_string(cluster_id, "granary", "The cluster's id.");
DEFINE_double(timeout, 30.0, "Seconds to wait for the scheduler's acknowledgement.");

int main(int argc, char** argv) {
  granary::InitProcess("granary_ctl --scheduler=HOST:PORT shutdown|checkpoint", &argc, &argv);
  const std::string verb = argc == 2 ? argv[1] : "";
  if (verb == "keygen") {
    if (FLAGS_keys_dir.empty()) {
      LOG(ERROR) << "granary_ctl keygen: --keys_dir is required";
      return EXIT_FAILURE;
    }
    absl::StatusOr<granary::CurveKeys> keys = granary::GenerateCurveKeys();
    absl::Status status =
        keys.ok() ? granary::WriteCurveKeys(FLAGS_keys_dir, *keys) : keys.status();
    if (!status.ok()) {
      LOG(ERROR) << "granary_ctl keygen: " << status.message();
      return EXIT_FAILURE;
    }
    LOG(INFO) << "cluster keys written to " << granary::CurveKeyFilePath(FLAGS_keys_dir);
    return EXIT_SUCCESS;
  }
  if ((verb != "shutdown" && verb != "checkpoint") || FLAGS_scheduler.empty()) {
    LOG(ERROR)
        << "usage: granary_ctl --scheduler=HOST:PORT shutdown|checkpoint, or --keys_dir=DIR keygen";
    return EXIT_FAILURE;
  }
  const bool shutdown = verb == "shutdown";
  granary::SchedulerClientOptions options;
  options.scheduler_address = FLAGS_scheduler;
  options.cluster_id = FLAGS_cluster_id;
  options.role = granary::proto::CONTROL;
  absl::StatusOr<std::optional<granary::CurveKeys>> curve = granary::CurveKeysFromFlags();
  if (!curve.ok()) {
    LOG(ERROR) << curve.status().message();
    return EXIT_FAILURE;
  }
  options.curve = *std::move(curve);
  absl::StatusOr<granary::SocketLimits> limits = granary::SocketLimitsFromFlags();
  if (!limits.ok()) {
    LOG(ERROR) << limits.status().message();
    return EXIT_FAILURE;
  }
  options.socket_limits = *limits;
  zmq::context_t context(1);
  granary::SchedulerClient client(&context, options);
  absl::StatusOr<granary::proto::Header> reply =
      client.ControlRequest(shutdown ? granary::proto::SHUTDOWN : granary::proto::CHECKPOINT_NOW,
                            absl::Seconds(FLAGS_timeout));
  const granary::proto::Command expected =
      shutdown ? granary::proto::SHUTDOWN_ACK : granary::proto::ACK;
  if (!reply.ok() || reply->command() != expected) {
    LOG(ERROR) << (reply.ok() ? "scheduler " + FLAGS_scheduler + " answered " +
                                    granary::proto::Command_Name(reply->command())
                              : std::string(reply.status().message()));
    return EXIT_FAILURE;
  }
  if (!shutdown) {
    std::printf("%s\n", reply->checkpoint_dir().c_str());
    LOG(INFO) << "checkpoint " << reply->checkpoint_dir() << " written";
    return EXIT_SUCCESS;
  }
  LOG(INFO) << "cluster at " << FLAGS_scheduler << " shut down";
  return EXIT_SUCCESS;
}
