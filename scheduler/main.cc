// granary_scheduler: parses flags, loads the cluster config and runs the Scheduler until the
// cluster shut down (SIGTERM or SIGINT shuts it down in order).
#include <csignal>
#include <cstdlib>

#include "absl/time/time.h"
#include "common/config.h"
#include "common/process_init.h"
#include "common/security_flags.h"
#include "common/zap_handler.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "scheduler/scheduler.h"

DEFINE_string(host, "127.0.0.1", "Address to listen on.");
DEFINE_int32(port, 0, "Port to listen on; 0 picks a free one (see --address_file).");
DEFINE_string(address_file, "", "If set, host:port is written here once bound.");
DEFINE_string(cluster_id, "granary", "Messages carrying another cluster id are rejected.");
DEFINE_int32(num_servers, 1, "Parameter servers the cluster waits for.");
DEFINE_int32(num_workers, 1, "Workers the cluster waits for.");
DEFINE_string(config, "", "Cluster config (Protobuf text, configs/*.pbtxt). Required.");
DEFINE_double(heartbeat_timeout, 5.0, "Seconds of silence after which a node is dead.");
DEFINE_double(register_timeout, 60.0, "Seconds the whole cluster has to register.");
DEFINE_string(checkpoint_dir, "",
              "Consistent checkpoints go here; on start the run rolls back to the newest one. "
              "Empty: no checkpoints.");
DEFINE_int32(checkpoint_every_chunks, 0, "Checkpoint after this many finished chunks; 0: never.");
DEFINE_double(checkpoint_every_minutes, 0, "Checkpoint after this many minutes; 0: never.");
DEFINE_int32(keep_checkpoints, 2, "Newest complete checkpoints kept; older ones are removed.");
DEFINE_double(checkpoint_timeout, 600, "Seconds a checkpoint (or a day-close step) may take.");
DEFINE_string(day, "", "Training day YYYYMMDD, stamped on the rows trained (ttl_days).");
DEFINE_string(base_dir, "",
              "Without a checkpoint in --checkpoint_dir, start from this closed day's base.");
DEFINE_string(close_day_into, "",
              "Model folder: once every worker is done, close --day into it (Shrink, delta "
              "export to deltas/DAY, base bases/DAY, report reports/DAY.close.json).");
DEFINE_int32(max_requests_per_peer, granary::SchedulerOptions().max_requests_per_peer,
             "Most requests of one peer connection the scheduler holds unanswered (barriers, "
             "NEXT_CHUNK waiting for a chunk, CHECKPOINT_NOW, SHUTDOWN); more are answered at "
             "once with an error reply.");
DEFINE_uint64(max_work_queue_bytes, granary::SchedulerOptions().max_work_queue_bytes,
              "Most bytes the work queues workers open may take together (definitions and "
              "per-chunk bookkeeping); an OPEN_QUEUE beyond it is refused.");
DEFINE_string(fault_in_close, "",
              "FAULT INJECTION, for tests only: kill the scheduler (SIGKILL) right after this "
              "step of the day close (shrink, export, checkpoint, publish, report), or make the "
              "base's move fail (publish_error). Empty: no fault.");

namespace {
// SIGTERM/SIGINT ask the running scheduler to shut the whole cluster down in order. A signal
// handler can only reach it through a global; RequestStop() is a lock-free atomic store.
granary::Scheduler* running_scheduler = nullptr;
void RequestClusterStop(int) {
  if (running_scheduler != nullptr) running_scheduler->RequestStop();
}
}  // namespace

int main(int argc, char** argv) {
  granary::InitProcess("granary_scheduler --config=FILE --num_servers=N --num_workers=M", &argc,
                       &argv);

  if (FLAGS_config.empty()) {
    LOG(ERROR) << "--config is required";
    return EXIT_FAILURE;
  }
  absl::StatusOr<granary::proto::ClusterConfig> config = granary::LoadClusterConfig(FLAGS_config);
  if (!config.ok()) {
    LOG(ERROR) << config.status().message();
    return EXIT_FAILURE;
  }
  absl::StatusOr<std::optional<granary::CurveKeys>> curve = granary::CurveKeysFromFlags();
  if (!curve.ok()) {
    LOG(ERROR) << curve.status().message();
    return EXIT_FAILURE;
  }
  absl::StatusOr<granary::SocketLimits> limits = granary::SocketLimitsFromFlags();
  if (!limits.ok()) {
    LOG(ERROR) << limits.status().message();
    return EXIT_FAILURE;
  }
  granary::SchedulerOptions options;
  options.curve = *std::move(curve);
  options.socket_limits = *limits;
  options.host = FLAGS_host;
  options.port = FLAGS_port;
  options.address_file = FLAGS_address_file;
  options.cluster_id = FLAGS_cluster_id;
  options.num_servers = FLAGS_num_servers;
  options.num_workers = FLAGS_num_workers;
  options.config = *config;
  options.heartbeat_timeout = absl::Seconds(FLAGS_heartbeat_timeout);
  options.register_timeout = absl::Seconds(FLAGS_register_timeout);
  options.checkpoint_dir = FLAGS_checkpoint_dir;
  options.checkpoint_every_chunks = FLAGS_checkpoint_every_chunks;
  options.checkpoint_every = absl::Minutes(FLAGS_checkpoint_every_minutes);
  options.keep_checkpoints = FLAGS_keep_checkpoints;
  options.checkpoint_timeout = absl::Seconds(FLAGS_checkpoint_timeout);
  options.day = FLAGS_day;
  options.base_dir = FLAGS_base_dir;
  options.close_day_into = FLAGS_close_day_into;
  options.fault_in_close = FLAGS_fault_in_close;
  options.max_requests_per_peer = FLAGS_max_requests_per_peer;
  options.max_work_queue_bytes = FLAGS_max_work_queue_bytes;

  zmq::context_t context(1);
  // Admits only peers holding the cluster keypair to the scheduler's CURVE socket.
  granary::ZapHandler zap(&context, options.curve, "scheduler");
  granary::Scheduler scheduler(&context, std::move(options));
  running_scheduler = &scheduler;
  std::signal(SIGTERM, RequestClusterStop);
  std::signal(SIGINT, RequestClusterStop);
  absl::Status status = scheduler.Run();
  if (!status.ok()) {
    LOG(ERROR) << "scheduler: " << status.message();
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
