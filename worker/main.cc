// granary_worker: registers with the scheduler, connects to the servers and runs a job.
//   --job=demo  the push/pull demo (worker/demo_job.h)
//   --job=train train and evaluate the model of --job_config (worker/train/trainer.h)
//   --job=idle  no work: stay a cluster member until shutdown (for tests and debugging)
#include <cstdlib>

#include "common/node_flags.h"
#include "common/node_name.h"
#include "common/process_init.h"
#include "glog/logging.h"
#include "worker/demo_job.h"
#include "worker/kv_worker.h"
#include "worker/train/trainer.h"

DEFINE_string(job, "demo", "What to run: demo, train or idle.");
DEFINE_string(job_config, "", "--job=train: the job config (common/proto/job.proto).");
DEFINE_string(data_dir, ".", "--job=train: folder of the job's relative train/eval patterns.");
DEFINE_string(output_dir, ".", "--job=train: folder of the job's relative metrics file.");
DEFINE_int32(threads, 1,
             "--job=train: compute threads, each training its own model replica on its own "
             "batches.");
DEFINE_bool(evaluate_before_training, false,
            "--job=train: first evaluate the model the run starts from on the eval files "
            "(progressive validation; logged as epoch 0).");
DEFINE_int32(max_staleness, -1,
             "--job=train: consistency. -1: the job's TrainingConfig.max_staleness (absent: "
             "asynchronous); s >= 0: bounded staleness, no worker more than s batches ahead of "
             "the slowest; 0: bulk-synchronous.");
DEFINE_double(request_timeout, 60.0, "Seconds before an unanswered pull/push fails.");
DEFINE_int32(demo_keys, 10000, "Keys the demo pushes and pulls.");
DEFINE_int32(demo_rounds, 20, "Push rounds of the demo.");

int main(int argc, char** argv) {
  granary::InitProcess("granary_worker --scheduler=HOST:PORT [--job=demo]", &argc, &argv);
  if (FLAGS_scheduler.empty()) {
    LOG(ERROR) << "--scheduler is required";
    return EXIT_FAILURE;
  }
  if (FLAGS_job != "demo" && FLAGS_job != "train" && FLAGS_job != "idle") {
    LOG(ERROR) << "unknown --job=" << FLAGS_job << " (use demo, train or idle)";
    return EXIT_FAILURE;
  }
  if (FLAGS_max_staleness < -1) {
    LOG(ERROR) << "--max_staleness=" << FLAGS_max_staleness
               << " must be >= 0, or -1 for the job's setting";
    return EXIT_FAILURE;
  }
  // A bad job config is reported before joining the cluster.
  absl::StatusOr<granary::JobSpec> job_spec;
  if (FLAGS_job == "train") {
    job_spec = granary::LoadJobConfig(FLAGS_job_config);
    if (!job_spec.ok()) {
      LOG(ERROR) << "--job_config: " << job_spec.status().message();
      return EXIT_FAILURE;
    }
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
  } else if (status.ok() && FLAGS_job == "train") {
    granary::TrainerOptions train;
    train.data_dir = FLAGS_data_dir;
    train.output_dir = FLAGS_output_dir;
    train.threads = FLAGS_threads;
    train.evaluate_before_training = FLAGS_evaluate_before_training;
    if (FLAGS_max_staleness >= 0) train.max_staleness = FLAGS_max_staleness;
    granary::Trainer trainer(*std::move(job_spec), &worker, &client, train);
    std::vector<granary::EpochReport> reports;
    status = trainer.Run(&reports);
  }
  if (!status.ok()) LOG(ERROR) << "worker " << client.rank() << ": " << status.message();
  if (FLAGS_job != "idle") client.ReportJobDone(status);
  absl::Status shutdown;
  do {
    shutdown = client.WaitForShutdown(absl::Seconds(1));
  } while (absl::IsDeadlineExceeded(shutdown));
  if (!shutdown.ok()) LOG(ERROR) << "worker " << client.rank() << ": " << shutdown.message();
  return status.ok() && shutdown.ok() ? EXIT_SUCCESS : EXIT_FAILURE;
}
