#include "scheduler/scheduler.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/node_name.h"
#include "common/shard_map.h"
#include "common/socket_options.h"
#include "glog/logging.h"

namespace granary {
namespace {

std::string DescribeAssignment(const proto::WorkQueueSpec& spec) {
  if (spec.assignment() == proto::WorkQueueSpec::ROUND_ROBIN) {
    return absl::StrCat("round-robin to ", spec.num_workers(), " workers");
  }
  return "to whichever worker asks";
}

}  // namespace

Scheduler::Scheduler(zmq::context_t* context, SchedulerOptions options)
    : context_(context), options_(std::move(options)), router_(*context, zmq::socket_type::router) {
  ConfigureSocket(router_);
}

proto::Header Scheduler::NewHeader(proto::Command command) const {
  return MakeHeader(command, options_.cluster_id, proto::SCHEDULER, 0);
}

void Scheduler::Send(const std::string& routing_id, proto::Header header) {
  zmq::message_t id(routing_id.data(), routing_id.size());
  absl::Status status = SendMessage(router_, Message{std::move(header), {}, {}}, &id);
  if (!status.ok()) LOG(ERROR) << "scheduler: " << status.message();
}

void Scheduler::SendError(const std::string& routing_id, const proto::Header& request,
                          const std::string& error) {
  proto::Header reply =
      MakeReplyHeader(request, proto::ERROR_REPLY, options_.cluster_id, proto::SCHEDULER, 0);
  reply.set_error(error);
  Send(routing_id, std::move(reply));
}

absl::Status Scheduler::WriteAddressFile() const {
  if (options_.address_file.empty()) return absl::OkStatus();
  return WriteFileAtomically(options_.address_file,
                             absl::StrCat(options_.host, ":", port_.load(), "\n"));
}

absl::Status Scheduler::Run() {
  absl::StatusOr<int> port = BindTcp(router_, options_.host, options_.port);
  if (!port.ok()) return port.status();
  port_ = *port;
  absl::Status status = RestoreNewestCheckpoint();
  if (!status.ok()) return status;
  status = WriteAddressFile();
  if (!status.ok()) return status;
  LOG(INFO) << "scheduler listening on " << options_.host << ":" << port_ << ", waiting for "
            << options_.num_servers << " servers and " << options_.num_workers << " workers";
  absl::Time start = absl::Now();
  while (true) {
    absl::Time now = absl::Now();
    if (stop_requested_ && !shutting_down_) StartShutdown("stop requested");
    if (!formed_ && !shutting_down_ && now - start > options_.register_timeout) {
      std::string missing = DescribeMissing();
      LOG(ERROR) << "cluster did not form within "
                 << absl::FormatDuration(options_.register_timeout) << ": " << missing;
      for (const Member& member : pending_) {
        proto::Header header = NewHeader(proto::SHUTDOWN);
        header.set_error(absl::StrCat("cluster did not form: ", missing));
        Send(member.routing_id, std::move(header));
      }
      return absl::DeadlineExceededError(
          absl::StrCat("cluster did not form within ",
                       absl::FormatDuration(options_.register_timeout), ": ", missing));
    }
    if (shutting_down_) {
      bool all_acked = true;
      for (const auto& [id, member] : members_) {
        if (member.alive && shutdown_acked_.count(id) == 0) all_acked = false;
      }
      if (all_acked || now > shutdown_deadline_) {
        if (!all_acked) LOG(ERROR) << "shutdown: some nodes did not acknowledge in time";
        for (const std::string& waiter : control_waiters_) {
          Send(waiter, NewHeader(proto::SHUTDOWN_ACK));
        }
        LOG(INFO) << "cluster shut down";
        return run_outcome_;
      }
    }
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    PollSockets(&item, 1, absl::ToChronoMilliseconds(options_.check_interval));
    while (true) {
      std::vector<zmq::message_t> frames;
      zmq::recv_result_t received =
          zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
      if (!received) break;
      std::string routing_id = frames[0].to_string();
      std::string peer = frames.size() > 1 ? PeerAddress(frames[1]) : "unknown peer";
      frames.erase(frames.begin());
      Message message;
      absl::Status decoded = DecodeMessage(std::move(frames), options_.cluster_id, peer, &message);
      if (!decoded.ok()) {
        LOG(ERROR) << "scheduler rejected a message: " << decoded.message();
        SendError(routing_id, message.header, std::string(decoded.message()));
        continue;
      }
      HandleMessage(routing_id, std::move(message));
    }
    if (formed_) CheckHeartbeats();
    PublishClocks();
    AdvanceCheckpoint();
    AdvanceDayClose();
  }
}

void Scheduler::HandleMessage(const std::string& routing_id, Message&& message) {
  const proto::Header& header = message.header;
  auto member = members_.find(routing_id);
  if (member != members_.end()) member->second.last_seen = absl::Now();
  switch (header.command()) {
    case proto::REGISTER:
      HandleRegister(routing_id, header);
      return;
    case proto::HEARTBEAT:
      if (member != members_.end()) Send(routing_id, NewHeader(proto::HEARTBEAT_ACK));
      return;
    case proto::BARRIER:
      HandleBarrier(routing_id, header);
      return;
    case proto::JOB_DONE: {
      if (member == members_.end()) break;
      member->second.job_done = true;
      if (!header.error().empty()) {
        // The run fails, and a day it was training is not closed.
        LOG(ERROR) << NodeName(member->second.info) << " failed its job: " << header.error();
        if (run_outcome_.ok()) {
          run_outcome_ = absl::AbortedError(
              absl::StrCat(NodeName(member->second.info), " failed its job: ", header.error()));
        }
      } else {
        LOG(INFO) << NodeName(member->second.info) << " finished its job";
      }
      bool all_done = true;
      for (const auto& [id, m] : members_) {
        if (m.info.role() == proto::WORKER && m.alive && !m.job_done) all_done = false;
      }
      if (!all_done) return;
      if (!options_.close_day_into.empty() && day_close_ == DayClose::kNotYet &&
          run_outcome_.ok()) {
        LOG(INFO) << "all workers finished their jobs: closing day " << options_.day;
        day_close_ = DayClose::kShrink;
        day_close_started_ = absl::Now();
        return;
      }
      if (checkpoint_.has_value() || !checkpoint_wanted_.empty()) {
        LOG(INFO) << "all workers finished their jobs; shutting down after the checkpoint";
        shutdown_after_checkpoint_ = "all workers finished their jobs";
        return;
      }
      StartShutdown("all workers finished their jobs");
      return;
    }
    case proto::SHUTDOWN:
      control_waiters_.push_back(routing_id);
      StartShutdown(absl::StrCat("requested by ", DescribeSender(header, "control client")));
      return;
    case proto::SHUTDOWN_ACK:
      shutdown_acked_.insert(routing_id);
      return;
    case proto::ACK:
    case proto::ERROR_REPLY:
      if (member == members_.end() || member->second.info.role() != proto::SERVER) return;
      HandleOrderAnswer(member->second, header);
      return;
    case proto::CHECKPOINT_NOW:
      if (checkpoints_ == nullptr) {
        SendError(routing_id, header, "this run keeps no checkpoints (no --checkpoint_dir)");
        return;
      }
      checkpoint_waiters_.push_back(HeldRequest{routing_id, header});
      // A checkpoint already under way serves the request: no chunk finishes after it began.
      if (!checkpoint_.has_value()) {
        RequestCheckpoint(absl::StrCat("requested by ", DescribeSender(header, "control client")));
      }
      return;
    case proto::CLOCK:
      if (member == members_.end() || member->second.info.role() != proto::WORKER) break;
      HandleClockReport(member->second, header);
      return;
    case proto::OPEN_QUEUE:
    case proto::NEXT_CHUNK:
    case proto::CHUNK_DONE:
      if (member == members_.end() || member->second.info.role() != proto::WORKER) break;
      HandleQueueRequest(member->second, header);
      return;
    default:
      break;
  }
  SendError(routing_id, header,
            absl::StrCat("scheduler does not serve ", proto::Command_Name(header.command()),
                         " from ", DescribeSender(header, "this sender")));
}

void Scheduler::HandleQueueRequest(const Member& member, const proto::Header& header) {
  const std::string& routing_id = member.routing_id;
  const std::string who = NodeName(member.info);
  if (header.command() == proto::OPEN_QUEUE) {
    auto existing = queues_.find(header.queue().name());
    if (existing != queues_.end()) {
      // Every worker opens the same queue; only the first definition counts.
      const proto::WorkQueueSpec& opened = existing->second.spec();
      if (!SameChunks(opened, header.queue())) {
        SendError(routing_id, header,
                  absl::StrCat("work queue '", header.queue().name(), "' from ", who, " has ",
                               header.queue().chunks_size(), " chunks; it was opened with ",
                               existing->second.size(), " other chunks"));
        return;
      }
      if (opened.SerializeAsString() != header.queue().SerializeAsString()) {
        // E.g. one worker trains bulk-synchronously, another not.
        SendError(routing_id, header,
                  absl::StrCat("work queue '", header.queue().name(), "' from ", who,
                               " deals its chunks ", DescribeAssignment(header.queue()),
                               "; it was opened dealing them ", DescribeAssignment(opened)));
        return;
      }
    } else {
      if (header.queue().assignment() == proto::WorkQueueSpec::ROUND_ROBIN &&
          header.queue().num_workers() != options_.num_workers) {
        SendError(routing_id, header,
                  absl::StrCat("work queue '", header.queue().name(), "' from ", who,
                               " deals its chunks to ", header.queue().num_workers(),
                               " workers; the cluster has ", options_.num_workers));
        return;
      }
      absl::StatusOr<WorkQueue> queue = WorkQueue::Create(header.queue());
      if (!queue.ok()) {
        SendError(routing_id, header, absl::StrCat(queue.status().message(), " (from ", who, ")"));
        return;
      }
      // Workers already dead never take their chunks: the others must.
      for (const auto& [id, m] : members_) {
        if (m.info.role() == proto::WORKER && !m.alive) queue->Requeue(m.info.rank());
      }
      absl::Status restored = RestoreQueueProgress(*queue);
      if (!restored.ok()) {
        SendError(routing_id, header, absl::StrCat(restored.message(), " (opened by ", who, ")"));
        return;
      }
      LOG(INFO) << "work queue '" << queue->name() << "' opened by " << who << ": " << queue->size()
                << " chunks, " << queue->num_finished() << " already finished";
      queue->set_paused(checkpoint_.has_value());
      queues_.emplace(queue->name(), *std::move(queue));
    }
    Send(routing_id, MakeReplyHeader(header, proto::ACK, options_.cluster_id, proto::SCHEDULER, 0));
    return;
  }
  auto queue = queues_.find(header.queue_name());
  if (queue == queues_.end()) {
    SendError(routing_id, header,
              absl::StrCat("no work queue '", header.queue_name(), "' (asked by ", who, ")"));
    return;
  }
  if (header.command() == proto::NEXT_CHUNK) {
    if (!TryAnswerNextChunk(queue->second, member, header)) {
      held_requests_[queue->first].push_back(HeldRequest{routing_id, header});
    }
    return;
  }
  absl::Status finished = queue->second.Finish(member.info.rank(), header.chunk().id());
  if (!finished.ok()) {
    SendError(routing_id, header, std::string(finished.message()));
    return;
  }
  Send(routing_id, MakeReplyHeader(header, proto::ACK, options_.cluster_id, proto::SCHEDULER, 0));
  LOG(INFO) << "work queue '" << queue->first << "': chunk " << header.chunk().id()
            << " finished by " << who;
  ++chunks_since_checkpoint_;
  if (queue->second.drained()) {
    LOG(INFO) << "work queue '" << queue->first << "': all " << queue->second.size()
              << " chunks finished";
    AnswerHeldRequests(queue->second);
    RequestCheckpoint(absl::StrCat("work queue '", queue->first, "' finished"));
  }
}

bool Scheduler::TryAnswerNextChunk(WorkQueue& queue, const Member& member,
                                   const proto::Header& request) {
  proto::Header reply =
      MakeReplyHeader(request, proto::CHUNK, options_.cluster_id, proto::SCHEDULER, 0);
  reply.set_queue_name(queue.name());
  if (std::optional<proto::Chunk> chunk = queue.Take(member.info.rank())) {
    *reply.mutable_chunk() = *std::move(chunk);
  } else if (queue.drained()) {
    reply.set_queue_drained(true);
  } else {
    return false;  // chunks are out with other workers, or the queue is paused
  }
  Send(member.routing_id, std::move(reply));
  return true;
}

void Scheduler::AnswerHeldRequests(WorkQueue& queue) {
  std::vector<HeldRequest>& held = held_requests_[queue.name()];
  std::vector<HeldRequest> still_held;
  for (HeldRequest& request : held) {
    auto member = members_.find(request.routing_id);
    if (member == members_.end() || !member->second.alive) continue;
    if (!TryAnswerNextChunk(queue, member->second, request.header)) {
      still_held.push_back(std::move(request));
    }
  }
  held = std::move(still_held);
}

void Scheduler::HandleRegister(const std::string& routing_id, const proto::Header& header) {
  const proto::NodeInfo& node = header.node();
  if (formed_ || shutting_down_) {
    SendError(routing_id, header,
              absl::StrCat("cluster already formed with ", options_.num_servers, " servers and ",
                           options_.num_workers, " workers"));
    return;
  }
  int servers = 0, workers = 0;
  for (const Member& m : pending_) {
    if (m.routing_id == routing_id) return;  // duplicate REGISTER
    (m.info.role() == proto::SERVER ? servers : workers)++;
  }
  bool is_server = node.role() == proto::SERVER;
  if (!is_server && node.role() != proto::WORKER) {
    SendError(routing_id, header, "only servers and workers register");
    return;
  }
  if ((is_server && servers >= options_.num_servers) ||
      (!is_server && workers >= options_.num_workers)) {
    SendError(routing_id, header,
              absl::StrCat("cluster expects only ",
                           is_server ? options_.num_servers : options_.num_workers, " ",
                           RoleName(node.role()), "s"));
    return;
  }
  pending_.push_back(Member{routing_id, node, absl::Now()});
  LOG(INFO) << "registered " << RoleName(node.role()) << " pid " << node.pid() << " from "
            << node.host() << (node.port() > 0 ? absl::StrCat(":", node.port()) : "");
  if (servers + workers + 1 == options_.num_servers + options_.num_workers) FormCluster();
}

void Scheduler::FormCluster() {
  int next_rank[2] = {0, 0};
  ShardMap shard_map = ShardMap::EvenSplit(options_.num_servers, /*version=*/1);
  *view_.mutable_shard_map() = shard_map.ToProto();
  *view_.mutable_config() = options_.config;
  for (Member& member : pending_) {
    member.info.set_rank(next_rank[member.info.role() == proto::SERVER ? 0 : 1]++);
    member.last_seen = absl::Now();
    *view_.add_nodes() = member.info;
  }
  for (Member& member : pending_) {
    proto::Header header = NewHeader(proto::CLUSTER_VIEW);
    *header.mutable_view() = view_;
    *header.mutable_view()->mutable_you() = member.info;
    Send(member.routing_id, std::move(header));
    members_[member.routing_id] = member;
  }
  pending_.clear();
  formed_ = true;
  LOG(INFO) << "cluster formed: " << options_.num_servers << " servers, " << options_.num_workers
            << " workers; " << shard_map.DebugString();
}

bool Scheduler::InGroup(const Member& member, const std::string& group) const {
  if (group == "all") return true;
  if (group == "servers") return member.info.role() == proto::SERVER;
  return member.info.role() == proto::WORKER;
}

void Scheduler::HandleBarrier(const std::string& routing_id, const proto::Header& header) {
  const std::string& group = header.barrier_group();
  if (members_.count(routing_id) == 0) {
    SendError(routing_id, header, "barrier from a node that is not a cluster member");
    return;
  }
  if (group != "all" && group != "servers" && group != "workers") {
    proto::Header release = NewHeader(proto::BARRIER_RELEASE);
    release.set_barrier_name(header.barrier_name());
    release.set_error(
        absl::StrCat("unknown barrier group '", group, "' (use all, servers or workers)"));
    Send(routing_id, std::move(release));
    return;
  }
  PendingBarrier& barrier = barriers_[header.barrier_name()];
  barrier.group = group;
  barrier.arrived.insert(routing_id);
  MaybeReleaseBarriers();
}

void Scheduler::MaybeReleaseBarriers() {
  for (auto it = barriers_.begin(); it != barriers_.end();) {
    bool complete = true;
    for (const auto& [id, member] : members_) {
      if (member.alive && InGroup(member, it->second.group) && it->second.arrived.count(id) == 0) {
        complete = false;
      }
    }
    if (!complete) {
      ++it;
      continue;
    }
    for (const std::string& id : it->second.arrived) {
      proto::Header release = NewHeader(proto::BARRIER_RELEASE);
      release.set_barrier_name(it->first);
      Send(id, std::move(release));
    }
    VLOG(1) << "released barrier '" << it->first << "'";
    it = barriers_.erase(it);
  }
}

void Scheduler::CheckHeartbeats() {
  absl::Time now = absl::Now();
  for (auto& [id, member] : members_) {
    if (!member.alive || now - member.last_seen <= options_.heartbeat_timeout) continue;
    member.alive = false;
    std::string name = NodeName(member.info);
    LOG(ERROR) << name << " is dead: no heartbeat for "
               << absl::FormatDuration(absl::Trunc(now - member.last_seen, absl::Milliseconds(1)))
               << " (timeout " << absl::FormatDuration(options_.heartbeat_timeout) << ")";
    for (const auto& [other_id, other] : members_) {
      if (!other.alive) continue;
      proto::Header notice = NewHeader(proto::NODE_DEAD);
      *notice.mutable_node() = member.info;
      Send(other_id, std::move(notice));
    }
    // A barrier that waited for the dead node can never complete as asked: fail it loudly.
    for (auto it = barriers_.begin(); it != barriers_.end();) {
      if (!InGroup(member, it->second.group)) {
        ++it;
        continue;
      }
      for (const std::string& waiting : it->second.arrived) {
        proto::Header release = NewHeader(proto::BARRIER_RELEASE);
        release.set_barrier_name(it->first);
        release.set_error(absl::StrCat(name, " died"));
        Send(waiting, std::move(release));
      }
      it = barriers_.erase(it);
    }
    if (member.info.role() != proto::WORKER) continue;
    // Its chunks were not finished: they go to whichever worker asks next.
    for (auto& [queue_name, queue] : queues_) {
      int requeued = queue.Requeue(member.info.rank());
      if (requeued > 0) {
        LOG(WARNING) << "work queue '" << queue_name << "': " << requeued << " chunks of " << name
                     << " handed out again";
      }
      AnswerHeldRequests(queue);
    }
  }
}

void Scheduler::StartShutdown(const std::string& reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_deadline_ = absl::Now() + options_.shutdown_timeout;
  LOG(INFO) << "shutting down the cluster: " << reason;
  for (const auto& [id, member] : members_) {
    if (!member.alive) continue;
    proto::Header header = NewHeader(proto::SHUTDOWN);
    header.set_error(reason);
    Send(id, std::move(header));
  }
  for (const Member& member : pending_) {
    proto::Header header = NewHeader(proto::SHUTDOWN);
    header.set_error(reason);
    Send(member.routing_id, std::move(header));
  }
}

std::string Scheduler::DescribeMissing() const {
  int servers = 0, workers = 0;
  for (const Member& m : pending_) (m.info.role() == proto::SERVER ? servers : workers)++;
  return absl::StrCat("have ", servers, " of ", options_.num_servers, " servers and ", workers,
                      " of ", options_.num_workers, " workers");
}

}  // namespace granary
