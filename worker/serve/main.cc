// granary_serve: answers score requests over HTTP with a daily model (docs/operations.md
// "Serving"). Parses flags, loads the model folder's newest base and later deltas, starts the
// delta poller and the HTTP server.
//
// The one include of another role: a base is a parameter server's RocksDB checkpoint, which
// only ps/ can read (ps/base_export.h); the bundle (common/model_bundle.h) takes that reader
// as a function, so only this file, where a serving process is put together, knows both.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/config.h"
#include "common/model_bundle.h"
#include "common/process_init.h"
#include "glog/logging.h"
#include "httplib.h"
#include "ps/base_export.h"
#include "ps/base_reader.h"
#include "worker/job_config.h"
#include "worker/serve/delta_poller.h"
#include "worker/serve/http_handlers.h"
#include "worker/serve/item_vectors.h"
#include "worker/serve/score_request.h"
#include "worker/serve/scorer.h"

DEFINE_string(job, "", "Job config (Protobuf text) the model was trained with. Required.");
DEFINE_string(cluster_config, "", "Cluster config the model was trained with. Required.");
DEFINE_string(model_dir, "", "Daily model folder (launch/daily.sh --model_dir). Required.");
DEFINE_string(bind, "127.0.0.1", "Address to listen on.");
DEFINE_int32(port, 0, "Port to listen on; 0 picks a free one (see --address_file).");
DEFINE_string(address_file, "", "If set, host:port is written here once listening.");
DEFINE_int32(threads, 4, "HTTP handler threads (requests scored at once).");
DEFINE_double(poll_seconds, granary::kDefaultPollSeconds,
              "Seconds between looks for newly closed days to apply.");
DEFINE_uint64(max_body_bytes, granary::kDefaultMaxBodyBytes,
              "Largest request body; a larger one gets 413.");
DEFINE_int32(max_candidates, granary::kDefaultMaxCandidates,
             "Most candidates of one score request; more gets 400.");
DEFINE_string(tables, "memory",
              "Where the served tables are held: 'memory' (every row loaded) or 'rocksdb' (the "
              "base read in place through RocksDB, only the deltas since in memory; for tables "
              "larger than memory, docs/operations.md \"Serving\").");
DEFINE_uint64(base_block_cache_mb, granary::kDefaultBaseBlockCacheBytes >> 20,
              "With --tables=rocksdb: RocksDB's block cache per base server folder, in MiB.");
DEFINE_string(scratch_dir, "",
              "Where base shards are copied to be read (removed after); empty: a fresh folder "
              "under the system's temporary directory.");

namespace {

int Fail(const std::string& message) {
  LOG(ERROR) << message;
  return EXIT_FAILURE;
}

}  // namespace

int main(int argc, char** argv) {
  granary::InitProcess(
      "granary_serve --job=JOB --cluster_config=C --model_dir=M [--port=P] [--poll_seconds=S]",
      &argc, &argv);
  if (FLAGS_job.empty() || FLAGS_cluster_config.empty() || FLAGS_model_dir.empty()) {
    return Fail("--job, --cluster_config and --model_dir are required");
  }
  if (!(FLAGS_poll_seconds > 0) || FLAGS_max_candidates < 1 || FLAGS_max_body_bytes < 1 ||
      FLAGS_threads < 1) {
    return Fail(
        "--poll_seconds must be > 0 and --max_candidates, --max_body_bytes, --threads >= 1");
  }
  absl::StatusOr<granary::JobSpec> spec = granary::LoadJobConfig(FLAGS_job);
  if (!spec.ok()) return Fail(spec.status().ToString());
  absl::StatusOr<granary::proto::ClusterConfig> cluster =
      granary::LoadClusterConfig(FLAGS_cluster_config);
  if (!cluster.ok()) return Fail(cluster.status().ToString());

  // One scratch folder for the copies of the base's shards, removed once the base is read.
  const std::string scratch =
      FLAGS_scratch_dir.empty()
          ? (std::filesystem::temp_directory_path() / absl::StrCat("granary-serve-", getpid()))
                .string()
          : FLAGS_scratch_dir;
  granary::ModelBundleOptions options;
  if (FLAGS_tables == "rocksdb") {
    options.tables = granary::ServedTables::kRocksDb;
  } else if (FLAGS_tables != "memory") {
    return Fail(absl::StrCat("--tables is '", FLAGS_tables, "': 'memory' or 'rocksdb'"));
  }
  if (FLAGS_base_block_cache_mb < 1) return Fail("--base_block_cache_mb must be >= 1");
  options.open_base_shard = [&](const std::string& shard_dir, int) {
    return granary::OpenBaseReader(*cluster, shard_dir, size_t{FLAGS_base_block_cache_mb} << 20);
  };
  options.model_dir = FLAGS_model_dir;
  options.scratch_dir = scratch;
  options.export_base_shard = [&](const std::string& shard_dir, int rank,
                                  const std::string& delta_path) {
    return granary::ExportBaseShard(*cluster, shard_dir, rank,
                                    absl::StrCat(scratch, "/copy-server-", rank), delta_path);
  };
  absl::StatusOr<std::unique_ptr<granary::ModelBundle>> bundle =
      granary::ModelBundle::Open(options);
  std::error_code ignored;
  if (FLAGS_scratch_dir.empty()) std::filesystem::remove_all(scratch, ignored);
  if (!bundle.ok()) return Fail(bundle.status().ToString());
  if (absl::StatusOr<int> applied = (*bundle)->ApplyNewDeltas(); !applied.ok()) {
    LOG(ERROR) << "refused a delta at start: " << applied.status();
  }
  absl::StatusOr<std::unique_ptr<granary::Scorer>> scorer = granary::Scorer::Create(*spec);
  if (!scorer.ok()) return Fail(scorer.status().ToString());
  const granary::ScoreRequestParser parser(spec->dataset, FLAGS_max_candidates);
  granary::DeltaPoller poller(bundle->get(), absl::Seconds(FLAGS_poll_seconds));
  granary::ItemVectorStore item_vectors(FLAGS_model_dir);
  const granary::ServeHandlers handlers(bundle->get(), scorer->get(), &parser, &poller,
                                        &item_vectors, FLAGS_max_body_bytes);

  httplib::Server server;
  const int threads = FLAGS_threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  handlers.Register(&server);
  int port = FLAGS_port;
  if (port == 0) {
    port = server.bind_to_any_port(FLAGS_bind);
  } else if (!server.bind_to_port(FLAGS_bind, port)) {
    port = -1;
  }
  if (port < 0) return Fail(absl::StrCat("cannot listen on ", FLAGS_bind, ":", FLAGS_port));
  const std::string address = absl::StrCat(FLAGS_bind, ":", port);
  if (!FLAGS_address_file.empty()) {
    absl::Status written = granary::WriteFileAtomically(FLAGS_address_file, address + "\n");
    if (!written.ok()) return Fail(written.ToString());
  }
  LOG(INFO) << "serving " << FLAGS_model_dir << " (day " << (*bundle)->Current()->version().day()
            << ") on http://" << address;
  if (!server.listen_after_bind()) return Fail("the HTTP server stopped with an error");
  return EXIT_SUCCESS;
}
