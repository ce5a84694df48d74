// The life of a granary_worker process once its flags are read: it checks its job, joins the
// cluster, runs the job, reports the outcome and stays a member until the scheduler orders
// shutdown. The jobs (WorkerJobOptions::job, the --job flag):
//   demo   the push/pull demo (worker/demo_job.h);
//   train  train and evaluate the model of a job config (worker/train/trainer.h);
//   idle   no work: stay a cluster member until shutdown (for tests and debugging); its
//          outcome is not reported, so it never ends the cluster's run.
//
// Dead servers: the scheduler's NODE_DEAD notices of servers reach the KV client
// (KVWorker::MarkServerDead), so that requests to a dead server fail at once instead of at
// their timeout. A notice is delivered on the SchedulerClient's background thread. Whichever
// way the job ends, RunWorkerJob clears the callback before destroying either client, and
// SetNodeDeadCallback returns only once no callback runs; the SchedulerClient is also destroyed
// first, joining that thread. So the callback can never run on a destroyed KV client.
//
// Fencing: a worker the scheduler declared dead (a stall longer than heartbeat_timeout) learns
// it from the scheduler's answer to its next message (SchedulerClient::fenced_reason) or from a
// server's refusal of its next pull or push, whichever comes first. Either ends the job at
// once: the scheduler's order fails every wait of both clients (KVWorker::Fence), a refusal
// fails the job's request. The worker then reports nothing and returns FailedPrecondition
// "fenced by the scheduler: <why>" (IsFencedExit), and the process exits with
// kFencedExitStatus naming it: launchers tell it apart from a failed job (the scheduler handed
// a fenced worker's work to the others, so the run goes on).
//
// Thread-compatible: RunWorkerJob runs the job on the calling thread (the trainer adds its
// compute threads).
#ifndef GRANARY_WORKER_JOB_H_
#define GRANARY_WORKER_JOB_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/scheduler_client.h"
#include "worker/demo_job.h"
#include "worker/kv_worker.h"
#include "worker/train/trainer.h"
#include "zmq.hpp"

namespace granary {

// The default WorkerJobOptions::exit_timeout: longer than a day close's checkpoint
// (--checkpoint_timeout, 600 s by default) plus the other workers' last chunks.
inline constexpr absl::Duration kDefaultExitTimeout = absl::Hours(1);

// The exit status of a granary_worker the scheduler fenced (1 is a failed job).
inline constexpr int kFencedExitStatus = 3;

struct WorkerJobOptions {
  // What to run: "demo", "train" or "idle" (see above).
  std::string job = "demo";
  // How to join the cluster (role WORKER) and reach the servers.
  SchedulerClientOptions scheduler;
  KVWorkerOptions kv;
  // job "train": the job config file (common/proto/job.proto) and how to run it.
  std::string job_config;
  TrainerOptions trainer;
  // job "demo".
  DemoJobOptions demo;
  // Once the job is done, how long the worker waits for the scheduler's shutdown order (the
  // other workers finishing, a day close) before it gives up. A lost scheduler (silent for
  // scheduler.heartbeat_timeout) ends the wait at once.
  absl::Duration exit_timeout = kDefaultExitTimeout;
};

// Runs `options.job` as one worker of the cluster. Before joining the cluster, so that a
// mistake costs no cluster time: InvalidArgument for an unknown job or (train) trainer options
// CheckTrainerOptions refuses, or the error of LoadJobConfig. Then the error of registering,
// of starting the KV client or of the job, which is also reported to the scheduler (except for
// idle); or, once the job is done, Unavailable if the scheduler is lost before it orders
// shutdown, DeadlineExceeded naming the scheduler if no order came within exit_timeout. OK
// once the job succeeded and the scheduler ordered shutdown. Every error is
// logged (LOG(ERROR)) when it happens, naming this worker once it has a rank.
absl::Status RunWorkerJob(zmq::context_t* context, const WorkerJobOptions& options);

// Whether `status`, returned by RunWorkerJob, says the scheduler fenced this worker.
bool IsFencedExit(const absl::Status& status);

}  // namespace granary

#endif  // GRANARY_WORKER_JOB_H_
