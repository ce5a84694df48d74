#include "scheduler/scheduler_impl.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/atomic_file.h"
#include "common/node_name.h"
#include "glog/logging.h"

namespace granary {

SchedulerImpl::SchedulerImpl(zmq::context_t* context, SchedulerOptions options)
    : options_(std::move(options)),
      socket_(context, options_.cluster_id, options_.curve, options_.socket_limits),
      membership_(options_, socket_),
      barriers_(socket_, membership_),
      orders_(options_, socket_, membership_),
      checkpoints_(options_, socket_, membership_, orders_, files_, manifests_),
      queues_(
          options_, socket_, membership_,
          [this](WorkQueue& queue) { return checkpoints_.RestoreQueueProgress(queue); },
          [this](const WorkQueue& queue) {
            checkpoints_.CountFinishedChunk();
            if (queue.drained()) {
              checkpoints_.Request(absl::StrCat("work queue '", queue.name(), "' finished"));
            }
          }),
      clocks_(socket_, membership_, queues_),
      day_close_(options_, socket_, orders_, checkpoints_, files_) {
  checkpoints_.SetQueues(&queues_);
}

absl::Status SchedulerImpl::CheckOptions() {
  if (options_.max_requests_per_peer < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_requests_per_peer must be >= 1 (is ",
                                                   options_.max_requests_per_peer, ")"));
  }
  if (options_.num_servers < 1 || options_.num_workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_servers and num_workers must be >= 1 (are ",
                                                   options_.num_servers, " and ",
                                                   options_.num_workers, ")"));
  }
  if (!options_.day.empty()) {
    absl::CivilDay day;
    if (options_.day.size() != 8 ||
        !absl::ParseCivilTime(
            absl::StrCat(options_.day.substr(0, 4), "-", options_.day.substr(4, 2), "-",
                         options_.day.substr(6, 2)),
            &day)) {
      return absl::InvalidArgumentError(
          absl::StrCat("day '", options_.day, "' is not a date YYYYMMDD"));
    }
    membership_.mutable_view()->set_day(static_cast<uint32_t>(day - absl::CivilDay(1970, 1, 1)));
  }
  if (!options_.close_day_into.empty() &&
      (options_.day.empty() || options_.checkpoint_dir.empty())) {
    return absl::InvalidArgumentError("closing a day needs the day and a checkpoint_dir");
  }
  if (absl::Status fault = CheckCloseFault(options_.fault_in_close); !fault.ok()) return fault;
  return absl::OkStatus();
}

absl::Status SchedulerImpl::WriteAddressFile() const {
  if (options_.address_file.empty()) return absl::OkStatus();
  return WriteFileAtomically(options_.address_file,
                             absl::StrCat(options_.host, ":", port_.load(), "\n"));
}

absl::Status SchedulerImpl::Run() {
  absl::StatusOr<int> port = socket_.Bind(options_.host, options_.port);
  if (!port.ok()) return port.status();
  port_ = *port;
  absl::Status status = CheckOptions();
  if (status.ok()) status = checkpoints_.RestoreNewest();
  if (status.ok()) status = WriteAddressFile();
  if (!status.ok()) return status;
  LOG(INFO) << "scheduler listening on " << options_.host << ":" << port_ << ", waiting for "
            << options_.num_servers << " servers and " << options_.num_workers << " workers";
  absl::Time start = absl::Now();
  while (true) {
    absl::Time now = absl::Now();
    if (stop_requested_ && !shutting_down_) StartShutdown("stop requested");
    if (!membership_.formed() && !shutting_down_ && now - start > options_.register_timeout) {
      std::string missing = membership_.DescribeMissing();
      LOG(ERROR) << "cluster did not form within "
                 << absl::FormatDuration(options_.register_timeout) << ": " << missing;
      for (const ClusterMember& member : membership_.pending()) {
        OrderShutdown(member.routing_id, absl::StrCat("cluster did not form: ", missing));
      }
      return absl::DeadlineExceededError(
          absl::StrCat("cluster did not form within ",
                       absl::FormatDuration(options_.register_timeout), ": ", missing));
    }
    if (shutting_down_ && ShutdownComplete()) {
      files_.Stop(options_.shutdown_timeout);
      manifests_.Stop(options_.shutdown_timeout);
      return run_outcome_;
    }
    socket_.ReceiveAll(options_.check_interval,
                       [this](const std::string& routing_id, Message&& message) {
                         HandleMessage(routing_id, std::move(message));
                       });
    if (membership_.formed()) {
      membership_.CheckHeartbeats([this](const ClusterMember& dead) { HandleDeath(dead); });
    }
    clocks_.Publish();
    files_.RunFinished();
    manifests_.RunFinished();
    AdvanceCheckpointAndDay();
  }
}

void SchedulerImpl::HandleMessage(const std::string& routing_id, Message&& message) {
  const proto::Header& header = message.header;
  ClusterMember* member = membership_.Touch(routing_id);
  if (member != nullptr && !member->alive) {
    RefuseFenced(*member, header);
    return;
  }
  if (absl::Status admitted = AdmitRequest(routing_id, header); !admitted.ok()) {
    LOG_EVERY_N(WARNING, kRefusalsPerLogLine)
        << "refused " << proto::Command_Name(header.command()) << " of "
        << DescribeSender(header, "a peer") << ": " << admitted.message() << " (logged once per "
        << kRefusalsPerLogLine << " refusals)";
    if (header.command() == proto::BARRIER) {  // a barrier's answer, error or not, is this
      proto::Header release = socket_.NewHeader(proto::BARRIER_RELEASE);
      release.set_barrier_name(header.barrier_name());
      release.set_error(std::string(admitted.message()));
      socket_.Send(routing_id, std::move(release));
    } else {
      socket_.SendError(routing_id, header, std::string(admitted.message()));
    }
    return;
  }
  const bool from_server = member != nullptr && member->info.role() == proto::SERVER;
  const bool from_worker = member != nullptr && member->info.role() == proto::WORKER;
  switch (header.command()) {
    case proto::REGISTER:
      membership_.HandleRegister(routing_id, header, /*closed=*/shutting_down_,
                                 [this](const ClusterMember& joiner, proto::ClusterView* view) {
                                   HandleJoin(joiner, view);
                                 });
      return;
    case proto::HEARTBEAT:
      // Registered nodes heartbeat while the cluster forms too, to notice a dead scheduler.
      if (member != nullptr || membership_.IsPending(routing_id)) {
        socket_.Send(routing_id, socket_.NewHeader(proto::HEARTBEAT_ACK));
      }
      return;
    case proto::BARRIER:
      barriers_.HandleBarrier(routing_id, header);
      return;
    case proto::JOB_DONE:
      if (member == nullptr) break;
      HandleJobDone(*member, header);
      return;
    case proto::SHUTDOWN:
      control_waiters_.push_back(routing_id);
      StartShutdown(absl::StrCat("requested by ", DescribeSender(header, "control client")));
      return;
    case proto::SHUTDOWN_ACK:
      if (member != nullptr) shutdown_acked_.insert(routing_id);  // only members are waited for
      return;
    case proto::ACK:
    case proto::ERROR_REPLY:
      if (from_server) orders_.HandleAnswer(*member, header);
      return;
    case proto::CHECKPOINT_NOW:
      checkpoints_.HandleCheckpointNow(routing_id, header);
      return;
    case proto::CLOCK:
      if (!from_worker) break;
      clocks_.HandleReport(*member, header);
      return;
    case proto::OPEN_QUEUE:
    case proto::NEXT_CHUNK:
    case proto::CHUNK_DONE:
    case proto::CHUNK_PROGRESS:
      if (!from_worker) break;
      queues_.HandleRequest(*member, header);
      return;
    default:
      break;
  }
  socket_.SendError(routing_id, header,
                    absl::StrCat("scheduler does not serve ", proto::Command_Name(header.command()),
                                 " from ", DescribeSender(header, "this sender")));
}

absl::Status SchedulerImpl::AdmitRequest(const std::string& routing_id,
                                         const proto::Header& header) const {
  for (const std::string* name :
       {&header.barrier_name(), &header.queue_name(), &header.queue().name(),
        &header.clock().name(), &header.chunk_progress().queue()}) {
    if (name->size() > kMaxNameBytes) {
      return absl::ResourceExhaustedError(absl::StrCat("a name of ", name->size(),
                                                       " bytes is over the scheduler's limit of ",
                                                       kMaxNameBytes, " bytes per name"));
    }
  }
  const proto::Command command = header.command();
  const bool control = command == proto::CHECKPOINT_NOW || command == proto::SHUTDOWN;
  if (!control && command != proto::BARRIER && command != proto::NEXT_CHUNK) {
    return absl::OkStatus();
  }
  const int held =
      barriers_.WaitingOf(routing_id) + queues_.HeldOf(routing_id) +
      checkpoints_.WaitersOf(routing_id) +
      static_cast<int>(std::count(control_waiters_.begin(), control_waiters_.end(), routing_id));
  if (held >= options_.max_requests_per_peer) {
    return absl::ResourceExhaustedError(absl::StrCat("this peer has ", held,
                                                     " requests held by the scheduler, its limit "
                                                     "(--max_requests_per_peer=",
                                                     options_.max_requests_per_peer, ")"));
  }
  if (control && checkpoints_.waiters() + control_waiters_.size() >= kMaxHeldControlRequests) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the scheduler holds ", kMaxHeldControlRequests,
                     " CHECKPOINT_NOW and SHUTDOWN requests, its limit for all peers"));
  }
  return absl::OkStatus();
}

void SchedulerImpl::HandleJobDone(ClusterMember& member, const proto::Header& header) {
  member.job_done = true;
  if (!header.error().empty()) {
    // The run fails, and a day it was training is not closed.
    LOG(ERROR) << NodeName(member.info) << " failed its job: " << header.error();
    if (run_outcome_.ok()) {
      run_outcome_ = absl::AbortedError(
          absl::StrCat(NodeName(member.info), " failed its job: ", header.error()));
    }
  } else {
    LOG(INFO) << NodeName(member.info) << " finished its job";
  }
  EndJobIfAllWorkersDone();
}

void SchedulerImpl::EndJobIfAllWorkersDone() {
  if (shutting_down_ || !membership_.AllWorkersDone()) return;
  if (day_close_.due() && run_outcome_.ok()) {
    day_close_.Begin();
    return;
  }
  if (checkpoints_.pending()) {
    LOG(INFO) << "all workers finished their jobs; shutting down after the checkpoint";
    shutdown_after_checkpoint_ = "all workers finished their jobs";
    return;
  }
  StartShutdown("all workers finished their jobs");
}

void SchedulerImpl::RefuseFenced(const ClusterMember& fenced, const proto::Header& header) {
  // A node that acknowledged the shutdown and exited is silent; anything else is a fenced node
  // that came back (a stall, a partition) and must leave without touching the run.
  if (header.command() == proto::SHUTDOWN_ACK) return;
  const std::string reason =
      absl::StrCat("fenced: ", NodeName(fenced.info), " incarnation ", fenced.info.incarnation(),
                   " was declared dead by the scheduler (", fenced.death, "); its ",
                   proto::Command_Name(header.command()), " and every later request are refused");
  LOG(WARNING) << "refused " << proto::Command_Name(header.command()) << " of "
               << NodeName(fenced.info) << ": " << reason;
  proto::Header order = socket_.NewHeader(proto::SHUTDOWN);
  order.set_error(reason);
  *order.mutable_node() = fenced.info;
  socket_.Send(fenced.routing_id, std::move(order));
}

void SchedulerImpl::HandleJoin(const ClusterMember& joiner, proto::ClusterView* view) {
  for (const std::string& name : barriers_.ReleasedNames()) view->add_released_barriers(name);
  clocks_.HandleJoin(joiner);
}

void SchedulerImpl::HandleDeath(const ClusterMember& dead) {
  barriers_.MemberDied(dead);
  // A dead server fails the workers' requests to it, and so the run (a roll-back).
  if (dead.info.role() != proto::WORKER) return;
  // Its chunks were not finished: they go to whichever worker asks next.
  queues_.RequeueChunksOf(dead.info.rank(), NodeName(dead.info));
  // Nodes that acknowledged the shutdown exit, and stop heartbeating: no failure.
  if (dead.job_done || shutting_down_) return;
  // The live workers take its chunks over (and a replacement may join, Membership). A live
  // worker that is done already waited for every chunk of every queue to finish (NextChunk
  // waits while chunks are out), so nothing is left undone. With no live worker, its work would
  // be, and the run fails.
  int live_workers = 0;
  for (const auto& [id, member] : membership_.members()) {
    live_workers += member.alive && member.info.role() == proto::WORKER;
  }
  if (live_workers == 0) {
    LOG(ERROR) << NodeName(dead.info) << " died before it finished its job, and no worker is left";
    if (run_outcome_.ok()) {
      run_outcome_ = absl::AbortedError(
          absl::StrCat(NodeName(dead.info), " died (", dead.death,
                       ") before it finished its job, and no worker is left alive to finish it"));
    }
    StartShutdown(std::string(run_outcome_.message()));
    return;
  }
  LOG(WARNING) << NodeName(dead.info) << " died before it finished its job; the job goes on with "
               << live_workers << " workers (its chunks were handed out again)";
  EndJobIfAllWorkersDone();
}

void SchedulerImpl::AdvanceCheckpointAndDay() {
  if (shutting_down_) return;
  if (membership_.formed()) {
    if (std::optional<CheckpointCoordinator::Outcome> ended = checkpoints_.Advance()) {
      if (std::optional<absl::Status> closed = day_close_.CheckpointEnded(*ended)) {
        FinishDay(*closed);
      } else if (!shutdown_after_checkpoint_.empty()) {
        StartShutdown(shutdown_after_checkpoint_);
      }
    }
  }
  if (shutting_down_) return;
  if (std::optional<absl::Status> failed = day_close_.Advance()) FinishDay(*failed);
}

void SchedulerImpl::FinishDay(const absl::Status& closed) {
  if (closed.ok()) {
    StartShutdown(absl::StrCat("day ", options_.day, " closed"));
    return;
  }
  run_outcome_ = closed;
  StartShutdown(std::string(closed.message()));
}

void SchedulerImpl::StartShutdown(const std::string& reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_deadline_ = absl::Now() + options_.shutdown_timeout;
  LOG(INFO) << "shutting down the cluster: " << reason;
  for (const auto& [id, member] : membership_.members()) {
    if (member.alive) OrderShutdown(id, reason);
  }
  for (const ClusterMember& member : membership_.pending()) {
    OrderShutdown(member.routing_id, reason);
  }
}

void SchedulerImpl::OrderShutdown(const std::string& routing_id, const std::string& reason) {
  proto::Header header = socket_.NewHeader(proto::SHUTDOWN);
  header.set_error(reason);
  socket_.Send(routing_id, std::move(header));
}

bool SchedulerImpl::ShutdownComplete() {
  bool all_acked = true;
  for (const auto& [id, member] : membership_.members()) {
    if (member.alive && shutdown_acked_.count(id) == 0) all_acked = false;
  }
  if (!all_acked && absl::Now() <= shutdown_deadline_) return false;
  if (!all_acked) LOG(ERROR) << "shutdown: some nodes did not acknowledge in time";
  for (const std::string& waiter : control_waiters_) {
    socket_.Send(waiter, socket_.NewHeader(proto::SHUTDOWN_ACK));
  }
  LOG(INFO) << "cluster shut down";
  return true;
}

}  // namespace granary
