// granary_worker: registers with the scheduler, connects to the servers and runs a job until
// the scheduler orders shutdown (worker/job.h):
//   --job=demo  the push/pull demo (worker/demo_job.h)
//   --job=train train and evaluate the model of --job_config (worker/train/trainer.h)
//   --job=idle  no work: stay a cluster member until shutdown (for tests and debugging)
//   --job=describe  no cluster: write the configs of a new dataset from --input's header and
//               first lines into --output_dir, as granary_describe (worker/tools/describe_flags.h)
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "common/node_flags.h"
#include "common/process_init.h"
#include "glog/logging.h"
#include "worker/job.h"
#include "worker/tools/describe_flags.h"

DEFINE_string(job, "demo", "What to run: demo, train, idle or describe.");
DEFINE_string(job_config, "", "--job=train: the job config (common/proto/job.proto).");
DEFINE_string(data_dir, ".", "--job=train: folder of the job's relative train/eval patterns.");
DEFINE_string(output_dir, ".",
              "--job=train: folder of the job's relative metrics file. --job=describe: where "
              "dataset.pbtxt, job.pbtxt and cluster.pbtxt are written.");
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
DEFINE_double(exit_timeout, absl::ToDoubleSeconds(granary::kDefaultExitTimeout),
              "Seconds the worker waits, once its job is done, for the scheduler's shutdown "
              "order before it exits with an error.");
DEFINE_int32(demo_keys, 10000, "Keys the demo pushes and pulls.");
DEFINE_int32(demo_rounds, 20, "Push rounds of the demo.");

int main(int argc, char** argv) {
  const std::string usage =
      "granary_worker --scheduler=HOST:PORT [--job=demo|train|idle]\n"
      "granary_worker --job=describe --output_dir=DIR " +
      granary::DescribeFlagsUsage();
  granary::InitProcess(usage.c_str(), &argc, &argv);
  if (FLAGS_job == "describe") {
    // Reads one file and writes three: no cluster to join.
    const absl::Status status = granary::RunDescribeFromFlags(FLAGS_output_dir, &std::cout);
    if (status.ok()) return EXIT_SUCCESS;
    LOG(ERROR) << status.message();
    return EXIT_FAILURE;
  }
  granary::KeepFreedMemoryIfFlagged();  // before any thread starts
  absl::StatusOr<granary::SchedulerClientOptions> client_options =
      granary::SchedulerClientOptionsFromFlags(granary::proto::WORKER, /*port=*/0);
  if (!client_options.ok()) {
    LOG(ERROR) << client_options.status().message();
    return EXIT_FAILURE;
  }
  granary::WorkerJobOptions options;
  options.job = FLAGS_job;
  options.scheduler = *std::move(client_options);
  options.kv.cluster_id = FLAGS_cluster_id;
  options.kv.curve = options.scheduler.curve;
  options.kv.socket_limits = options.scheduler.socket_limits;
  options.kv.request_timeout = absl::Seconds(FLAGS_request_timeout);
  options.kv.use_ipc = FLAGS_ipc;
  options.job_config = FLAGS_job_config;
  options.trainer.data_dir = FLAGS_data_dir;
  options.trainer.output_dir = FLAGS_output_dir;
  options.trainer.threads = FLAGS_threads;
  options.trainer.evaluate_before_training = FLAGS_evaluate_before_training;
  // -1 is the flag's "unset"; any other value, valid or not, goes to the trainer's check.
  options.trainer.max_staleness =
      FLAGS_max_staleness == -1 ? std::nullopt : std::optional<int>(FLAGS_max_staleness);
  options.exit_timeout = absl::Seconds(FLAGS_exit_timeout);
  options.demo.num_keys = FLAGS_demo_keys;
  options.demo.rounds = FLAGS_demo_rounds;
  zmq::context_t context(1);
  const absl::Status status = granary::RunWorkerJob(&context, options);
  if (status.ok()) return EXIT_SUCCESS;
  return granary::IsFencedExit(status) ? granary::kFencedExitStatus : EXIT_FAILURE;
}
