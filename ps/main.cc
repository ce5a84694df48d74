// granary_server: a parameter server. Parses flags, binds, registers with the scheduler,
// serves until the scheduler orders shutdown.
#include <cstdlib>

#include "common/node_flags.h"
#include "common/process_init.h"
#include "glog/logging.h"
#include "ps/server.h"

DEFINE_int32(port, 0, "Port to serve on; 0 picks a free one (reported to the scheduler).");
DEFINE_int32(threads, 2, "Request handler threads.");
DEFINE_string(data_dir, "granary-data", "Rows live in RocksDB under DATA_DIR/server-<rank>.");
DEFINE_uint64(cache_bytes, uint64_t{1} << 30, "Row cache budget of this server, in bytes.");
DEFINE_double(stats_interval, 60, "Seconds between load lines in the log; 0 disables.");
DEFINE_string(restore_from, "", "Start from the checkpoint folder DIR/server-<rank>.");

int main(int argc, char** argv) {
  granary::InitProcess("granary_server --scheduler=HOST:PORT", &argc, &argv);
  if (FLAGS_scheduler.empty()) {
    LOG(ERROR) << "--scheduler is required";
    return EXIT_FAILURE;
  }
  zmq::context_t context(1);
  granary::ServerOptions options;
  options.host = FLAGS_host;
  options.port = FLAGS_port;
  options.cluster_id = FLAGS_cluster_id;
  options.num_threads = FLAGS_threads;
  options.data_dir = FLAGS_data_dir;
  options.cache_bytes = FLAGS_cache_bytes;
  options.restore_from = FLAGS_restore_from;
  options.stats_interval = absl::Seconds(FLAGS_stats_interval);
  granary::ParameterServer server(&context, options);
  absl::StatusOr<int> port = server.Bind();
  if (!port.ok()) {
    LOG(ERROR) << "server: " << port.status().message();
    return EXIT_FAILURE;
  }
  granary::SchedulerClient client(
      &context, granary::SchedulerClientOptionsFromFlags(granary::proto::SERVER, *port));
  absl::Status status = client.Register();
  if (status.ok()) status = server.Start(client.view());
  if (status.ok()) status = granary::FollowScheduler(client, server);
  server.Stop();
  if (!status.ok()) {
    LOG(ERROR) << "server: " << status.message();
    return EXIT_FAILURE;
  }
  LOG(INFO) << "server " << client.rank() << " stopped";
  return EXIT_SUCCESS;
}
