// granary_server: a parameter server. Parses flags, binds, registers with the scheduler,
// serves until the scheduler orders shutdown.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_split.h"
#include "common/ipc_endpoint.h"
#include "common/node_flags.h"
#include "common/process_init.h"
#include "common/security_flags.h"
#include "common/zap_handler.h"
#include "glog/logging.h"
#include "ps/server.h"

DEFINE_int32(port, 0, "Port to serve on; 0 picks a free one (reported to the scheduler).");
DEFINE_int32(threads, 2, "Request handler threads.");
DEFINE_string(data_dir, "granary-data", "Rows live in RocksDB under DATA_DIR/server-<rank>.");
DEFINE_string(ipc_dir, "",
              "With --ipc, the socket file lives in a new private folder granary-ipc-XXXXXX "
              "under IPC_DIR (empty: $TMPDIR, else /tmp), removed when the server stops.");
DEFINE_uint64(cache_bytes, uint64_t{1} << 30, "Row cache budget of this server, in bytes.");
DEFINE_double(stats_interval, 60, "Seconds between load lines in the log; 0 disables.");
DEFINE_string(restore_from, "", "Start from the checkpoint folder DIR/server-<rank>.");
DEFINE_uint64(max_request_keys, granary::ServerOptions().max_request_keys,
              "Most keys one PULL or PUSH may carry to one table; more gets an error reply.");
DEFINE_uint64(max_request_bytes, granary::ServerOptions().max_request_bytes,
              "Most bytes of keys and values (keys x (8 + 4 x dim)) one PULL or PUSH may move "
              "for one table; more gets an error reply.");
DEFINE_int32(max_requests_per_peer, granary::ServerOptions().max_requests_per_peer,
             "Most requests of one peer connection in flight on the handler threads; more are "
             "answered at once with an error reply.");
DEFINE_string(fault_on_order, "",
              "FAULT INJECTION, for tests only: kill this server (SIGKILL) on receiving the order "
              "that completes this comma-separated sequence of order commands (CHECKPOINT, "
              "SHRINK, EXPORT_DELTA), e.g. SHRINK,CHECKPOINT. Empty: no fault.");

int main(int argc, char** argv) {
  granary::InitProcess("granary_server --scheduler=HOST:PORT", &argc, &argv);
  granary::KeepFreedMemoryIfFlagged();  // before any thread starts
  // The flags every node shares (--scheduler, --host, --cluster_id, ...) are read in
  // common/node_flags.cc; the port is known once the server is bound.
  absl::StatusOr<granary::SchedulerClientOptions> client_options =
      granary::SchedulerClientOptionsFromFlags(granary::proto::SERVER, /*port=*/0);
  if (!client_options.ok()) {
    LOG(ERROR) << client_options.status().message();
    return EXIT_FAILURE;
  }
  zmq::context_t context(1);
  granary::ServerOptions options;
  options.host = client_options->host;
  options.cluster_id = client_options->cluster_id;
  options.curve = client_options->curve;
  options.socket_limits = client_options->socket_limits;
  options.port = FLAGS_port;
  options.num_threads = FLAGS_threads;
  options.data_dir = FLAGS_data_dir;
  if (FLAGS_ipc) {
    absl::StatusOr<std::string> ipc_dir = granary::MakeIpcDir(FLAGS_ipc_dir);
    if (!ipc_dir.ok()) {
      LOG(ERROR) << "server: " << ipc_dir.status().message();
      return EXIT_FAILURE;
    }
    options.ipc_dir = *std::move(ipc_dir);
  }
  // The folder holds only this server's socket file; a killed server leaves it in the temp
  // folder, as any killed process leaves its temp files.
  const absl::Cleanup remove_ipc_dir = [&options] {
    std::error_code ignored;
    if (!options.ipc_dir.empty()) std::filesystem::remove_all(options.ipc_dir, ignored);
  };
  options.cache_bytes = FLAGS_cache_bytes;
  options.restore_from = FLAGS_restore_from;
  options.max_request_keys = FLAGS_max_request_keys;
  options.max_request_bytes = FLAGS_max_request_bytes;
  options.max_requests_per_peer = FLAGS_max_requests_per_peer;
  if (absl::Status admitted =
          granary::CheckMessageBytesAdmitRequests(options.socket_limits, FLAGS_max_request_bytes);
      !admitted.ok()) {
    LOG(ERROR) << "server: " << admitted.message();
    return EXIT_FAILURE;
  }
  if (!FLAGS_fault_on_order.empty()) {
    for (const absl::string_view name : absl::StrSplit(FLAGS_fault_on_order, ',')) {
      granary::proto::Command command;
      if (!granary::proto::Command_Parse(std::string(name), &command)) {
        LOG(ERROR) << "server: --fault_on_order '" << FLAGS_fault_on_order << "': '" << name
                   << "' is not a command name";
        return EXIT_FAILURE;
      }
    }
  }
  options.fault_on_order = FLAGS_fault_on_order;
  options.stats_interval = absl::Seconds(FLAGS_stats_interval);
  // Admits only peers holding the cluster keypair to the server's CURVE socket.
  granary::ZapHandler zap(&context, options.curve, "server");
  granary::ParameterServer server(&context, options);
  absl::StatusOr<int> port = server.Bind();
  if (!port.ok()) {
    LOG(ERROR) << "server: " << port.status().message();
    return EXIT_FAILURE;
  }
  client_options->port = *port;
  client_options->ipc_endpoint = server.ipc_endpoint();
  granary::SchedulerClient client(&context, *client_options);
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
