#include "worker/job.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "worker/job_config.h"

namespace granary {
namespace {

// Marks the status RunWorkerJob returns when the scheduler fenced the worker (IsFencedExit).
constexpr char kFencedPayload[] = "granary/worker-fenced";

// Logs `status` if it is an error, with `who` in front; returns it.
absl::Status Logged(const std::string& who, absl::Status status) {
  if (!status.ok()) LOG(ERROR) << who << ": " << status.message();
  return status;
}

// Runs the job on a registered `scheduler` and a started `kv`.
absl::Status RunJob(const WorkerJobOptions& options, std::optional<JobSpec> job_spec, KVWorker& kv,
                    SchedulerClient& scheduler) {
  if (options.job == "demo") {
    DemoJobResult result;
    return RunPushPullDemo(kv, scheduler, options.demo, &result);
  }
  if (options.job == "train") {
    Trainer trainer(*std::move(job_spec), &kv, &scheduler, options.trainer);
    std::vector<EpochReport> reports;
    return trainer.Run(&reports);
  }
  return absl::OkStatus();  // idle
}

}  // namespace

absl::Status RunWorkerJob(zmq::context_t* context, const WorkerJobOptions& options) {
  if (options.job != "demo" && options.job != "train" && options.job != "idle") {
    return Logged("worker", absl::InvalidArgumentError(absl::StrCat(
                                "unknown job '", options.job, "' (use demo, train or idle)")));
  }
  // A bad job config or trainer option is reported before joining the cluster.
  std::optional<JobSpec> job_spec;
  if (options.job == "train") {
    absl::Status checked = CheckTrainerOptions(options.trainer);
    if (!checked.ok()) return Logged("worker", checked);
    absl::StatusOr<JobSpec> loaded = LoadJobConfig(options.job_config);
    if (!loaded.ok()) return Logged("job config", loaded.status());
    job_spec = *std::move(loaded);
  }
  // Declared before the SchedulerClient, so destroyed after it: ~SchedulerClient joins the
  // thread that runs the NODE_DEAD callback below, which uses the KV client. The callback is
  // also cleared (stop_notices) before either is destroyed, so this order is not load-bearing.
  std::optional<KVWorker> kv;
  SchedulerClient scheduler(context, options.scheduler);
  absl::Status status = scheduler.Register();
  if (!status.ok()) return Logged("worker", status);
  const std::string worker = absl::StrCat("worker ", scheduler.rank());
  kv.emplace(context, scheduler.view(), options.kv);
  status = kv->Start();
  KVWorker* const servers = &*kv;
  SchedulerClient* const client = &scheduler;
  scheduler.SetNodeDeadCallback([servers, client](const proto::NodeInfo& node) {
    if (node.role() == proto::SERVER) {
      servers->MarkServerDead(node.rank(), "reported dead by the scheduler");
    } else if (node.rank() == client->rank() &&
               node.incarnation() == client->view().you().incarnation()) {
      servers->Fence(client->fenced_reason());  // this worker was fenced
    }
  });
  // Runs first at any return: once SetNodeDeadCallback returns, no notice reaches the KV client.
  absl::Cleanup stop_notices = [&scheduler] { scheduler.SetNodeDeadCallback(nullptr); };
  if (status.ok()) status = RunJob(options, std::move(job_spec), *kv, scheduler);
  Logged(worker, status).IgnoreError();
  // A fenced worker's chunks went to the others, and the scheduler ignores what it reports.
  auto fenced = [&]() -> std::optional<absl::Status> {
    std::string reason = scheduler.fenced_reason();
    if (reason.empty()) return std::nullopt;
    absl::Status exit =
        absl::FailedPreconditionError(absl::StrCat("exits: fenced by the scheduler: ", reason));
    exit.SetPayload(kFencedPayload, absl::Cord());
    return Logged(worker, exit);
  };
  if (std::optional<absl::Status> exit = fenced()) return *exit;
  if (options.job != "idle") scheduler.ReportJobDone(status);
  absl::Status shutdown = scheduler.WaitForShutdown(options.exit_timeout);
  if (std::optional<absl::Status> exit = fenced()) return *exit;
  if (absl::IsDeadlineExceeded(shutdown)) {
    shutdown = absl::DeadlineExceededError(absl::StrCat(
        "no shutdown order from scheduler ", options.scheduler.scheduler_address, " within ",
        absl::FormatDuration(options.exit_timeout), " of the job's end (exit_timeout)"));
  }
  Logged(worker, shutdown).IgnoreError();
  return status.ok() ? shutdown : status;
}

bool IsFencedExit(const absl::Status& status) {
  return status.GetPayload(kFencedPayload).has_value();
}

}  // namespace granary
