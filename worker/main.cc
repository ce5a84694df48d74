// granary_worker: registers with the scheduler, connects to the servers and runs a job.
//   --job=demo  the push/pull demo (worker/demo_job.h)
//   --job=idle  no work: stay a cluster member until shutdown (for tests and debugging)
#include <cstdlib>

#include "common/node_flags.h"
#include "common/node_name.h"
#include "common/process_init.h"
#include "glog/logging.h"
#include "worker/demo_job.h"
#include "worker/kv_worker.h"

DEFINE_string(job, "demo", "What to run: demo or idle.");
DEFINE_double(request_timeout, 60.0, "Seconds before an unanswered pull/push fails.");
DEFINE_int32(demo_keys, 10000, "Keys the demo pushes and pulls.");
DEFINE_int32(demo_rounds, 20, "Push rounds of the demo.");

int main(int argc, char** argv) {
  granary::InitProcess("granary_worker --scheduler=HOST:PORT [--job=demo]", &argc, &argv);
  if (FLAGS_scheduler.empty()) {
    LOG(ERROR) << "--scheduler is required";
    return EXIT_FAILURE;
  }
  if (FLAGS_job != "demo" && FLAGS_job != "idle") {
    LOG(ERROR) << "unknown --job=" << FLAGS_job << " (use demo or idle)";
    return EXIT_FAILURE;
  }
  zmq::context_t context(1);
  granary::SchedulerClient client(
      &context, granary::SchedulerClientOptionsFromFlags(granary::proto::WORKER, 0));
  absl::Status status = client.Register();
  if (!status.ok()) {
    LOG(ERROR) << "worker: " << status.message();
    return EXIT_FAILURE;
  }
  granary::KVWorkerOptions kv_options;
  kv_options.cluster_id = FLAGS_cluster_id;
  kv_options.request_timeout = absl::Seconds(FLAGS_request_timeout);
  granary::KVWorker worker(&context, client.view(), kv_options);
  status = worker.Start();
  client.SetNodeDeadCallback([&worker](const granary::proto::NodeInfo& node) {
    if (node.role() == granary::proto::SERVER) {
      worker.MarkServerDead(node.rank(), "reported dead by the scheduler");
    }
  });
  if (status.ok() && FLAGS_job == "demo") {
    granary::DemoJobOptions demo;
    demo.num_keys = FLAGS_demo_keys;
    demo.rounds = FLAGS_demo_rounds;
    granary::DemoJobResult result;
    status = granary::RunPushPullDemo(worker, client, demo, &result);
  }
  if (!status.ok()) LOG(ERROR) << "worker " << client.rank() << ": " << status.message();
  if (FLAGS_job != "idle") client.ReportJobDone();
  absl::Status shutdown;
  do {
    shutdown = client.WaitForShutdown(absl::Seconds(1));
  } while (absl::IsDeadlineExceeded(shutdown));
  if (!shutdown.ok()) LOG(ERROR) << "worker " << client.rank() << ": " << shutdown.message();
  return status.ok() && shutdown.ok() ? EXIT_SUCCESS : EXIT_FAILURE;
}
