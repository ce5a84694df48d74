#include "scheduler/work_queue_service.h"

#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/node_name.h"
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

WorkQueueService::WorkQueueService(const SchedulerOptions& options, SchedulerSocket& socket,
                                   const Membership& membership, RestoreProgress restore_progress,
                                   ChunkFinished chunk_finished)
    : options_(options),
      socket_(socket),
      membership_(membership),
      restore_progress_(std::move(restore_progress)),
      chunk_finished_(std::move(chunk_finished)) {}

void WorkQueueService::HandleRequest(const ClusterMember& member, const proto::Header& header) {
  const std::string& routing_id = member.routing_id;
  if (header.command() == proto::OPEN_QUEUE) {
    OpenQueue(member, header);
    return;
  }
  const std::string who = NodeName(member.info);
  if (header.command() == proto::CHUNK_PROGRESS) {
    auto queue = queues_.find(header.chunk_progress().queue());
    if (queue == queues_.end()) {
      LOG(WARNING) << "progress from " << who << " ignored: no work queue '"
                   << header.chunk_progress().queue() << "'";
      return;
    }
    RecordProgress(queue->second, member, header.chunk_progress());
    return;
  }
  auto queue = queues_.find(header.queue_name());
  if (queue == queues_.end()) {
    socket_.SendError(
        routing_id, header,
        absl::StrCat("no work queue '", header.queue_name(), "' (asked by ", who, ")"));
    return;
  }
  if (header.command() == proto::NEXT_CHUNK) {
    if (!TryAnswerNextChunk(queue->second, routing_id, header)) {
      held_requests_[queue->first].push_back(HeldRequest{routing_id, header});
    }
    return;
  }
  const uint64_t id = header.chunk().id();
  if (header.has_chunk_progress() && header.chunk_progress().chunk_id() == id &&
      header.chunk_progress().queue() == queue->first) {
    RecordProgress(queue->second, member, header.chunk_progress());
  }
  absl::Status finished = queue->second.Finish(member.info.rank(), id);
  if (!finished.ok()) {
    socket_.SendError(routing_id, header, std::string(finished.message()));
    return;
  }
  socket_.Acknowledge(routing_id, header);
  const WorkQueue::ChunkRecord& record = queue->second.record(id);
  std::string resumed;
  if (record.resumed_from >= 0) {
    resumed =
        absl::StrCat("; resumed at line ", record.resumed_at, " after worker ", record.resumed_from,
                     " died, ", record.partial_batches, " batches partially applied");
  }
  LOG(INFO) << "chunk " << id << " of queue '" << queue->first << "': " << record.samples_trained
            << " samples trained (by " << who << resumed << ")";
  if (queue->second.drained()) {
    const proto::QueueTotals totals = queue->second.Totals();
    LOG(INFO) << "work queue '" << queue->first << "': all " << queue->second.size()
              << " chunks finished; " << totals.samples_trained() << " samples trained, "
              << totals.requeued_chunks() << " chunks requeued, " << totals.partial_batches()
              << " batches partially applied";
    AnswerHeldRequests(queue->second);
  }
  chunk_finished_(queue->second);
}

void WorkQueueService::OpenQueue(const ClusterMember& member, const proto::Header& header) {
  const std::string& routing_id = member.routing_id;
  const std::string who = NodeName(member.info);
  auto existing = queues_.find(header.queue().name());
  if (existing != queues_.end()) {
    // Every worker opens the same queue; only the first definition counts.
    const proto::WorkQueueSpec& opened = existing->second.spec();
    if (!SameChunks(opened, header.queue())) {
      socket_.SendError(routing_id, header,
                        absl::StrCat("work queue '", header.queue().name(), "' from ", who, " has ",
                                     header.queue().chunks_size(), " chunks; it was opened with ",
                                     existing->second.size(), " other chunks"));
      return;
    }
    if (opened.SerializeAsString() != header.queue().SerializeAsString()) {
      // E.g. one worker trains bulk-synchronously, another not.
      socket_.SendError(routing_id, header,
                        absl::StrCat("work queue '", header.queue().name(), "' from ", who,
                                     " deals its chunks ", DescribeAssignment(header.queue()),
                                     "; it was opened dealing them ", DescribeAssignment(opened)));
      return;
    }
    socket_.Acknowledge(routing_id, header);
    return;
  }
  if (header.queue().assignment() == proto::WorkQueueSpec::ROUND_ROBIN &&
      header.queue().num_workers() != options_.num_workers) {
    socket_.SendError(routing_id, header,
                      absl::StrCat("work queue '", header.queue().name(), "' from ", who,
                                   " deals its chunks to ", header.queue().num_workers(),
                                   " workers; the cluster has ", options_.num_workers));
    return;
  }
  const size_t bytes = QueueBytes(header.queue());
  if (queue_bytes_ + bytes > options_.max_work_queue_bytes) {
    socket_.SendError(
        routing_id, header,
        absl::StrCat("work queue '", header.queue().name(), "' from ", who, " would take ", bytes,
                     " bytes beside the ", queue_bytes_, " of the queues open, over the limit (",
                     "--max_work_queue_bytes=", options_.max_work_queue_bytes, ")"));
    return;
  }
  absl::StatusOr<WorkQueue> queue = WorkQueue::Create(header.queue());
  if (!queue.ok()) {
    socket_.SendError(routing_id, header,
                      absl::StrCat(queue.status().message(), " (from ", who, ")"));
    return;
  }
  // Workers already dead never take their chunks: the others must (unless a replacement took
  // the rank over, Membership).
  std::set<int> live_ranks;
  for (const auto& [id, m] : membership_.members()) {
    if (m.info.role() == proto::WORKER && m.alive) live_ranks.insert(m.info.rank());
  }
  for (const auto& [id, m] : membership_.members()) {
    if (m.info.role() == proto::WORKER && !m.alive && live_ranks.count(m.info.rank()) == 0) {
      queue->Requeue(m.info.rank());
    }
  }
  absl::Status restored = restore_progress_(*queue);
  if (!restored.ok()) {
    socket_.SendError(routing_id, header,
                      absl::StrCat(restored.message(), " (opened by ", who, ")"));
    return;
  }
  LOG(INFO) << "work queue '" << queue->name() << "' opened by " << who << ": " << queue->size()
            << " chunks, " << queue->num_finished() << " already finished";
  queue->set_paused(paused_);
  queues_.emplace(queue->name(), *std::move(queue));
  queue_bytes_ += bytes;
  socket_.Acknowledge(routing_id, header);
}

bool WorkQueueService::TryAnswerNextChunk(WorkQueue& queue, const std::string& routing_id,
                                          const proto::Header& request) {
  proto::Header reply =
      MakeReplyHeader(request, proto::CHUNK, options_.cluster_id, proto::SCHEDULER, 0);
  reply.set_queue_name(queue.name());
  const int rank = membership_.members().at(routing_id).info.rank();
  if (std::optional<proto::Chunk> chunk = queue.Take(rank)) {
    *reply.mutable_chunk() = *std::move(chunk);
  } else if (queue.drained()) {
    reply.set_queue_drained(true);
    *reply.mutable_queue_totals() = queue.Totals();
  } else {
    return false;  // chunks are out with other workers, or the queue is paused
  }
  socket_.Send(routing_id, std::move(reply));
  return true;
}

void WorkQueueService::RecordProgress(WorkQueue& queue, const ClusterMember& member,
                                      const proto::ChunkProgress& progress) {
  absl::Status recorded = queue.RecordProgress(member.info.rank(), progress);
  if (!recorded.ok()) LOG(WARNING) << recorded.message() << " (" << NodeName(member.info) << ")";
}

void WorkQueueService::AnswerHeldRequests(WorkQueue& queue) {
  std::vector<HeldRequest>& held = held_requests_[queue.name()];
  std::vector<HeldRequest> still_held;
  for (HeldRequest& request : held) {
    auto member = membership_.members().find(request.routing_id);
    if (member == membership_.members().end() || !member->second.alive) continue;
    if (!TryAnswerNextChunk(queue, request.routing_id, request.header)) {
      still_held.push_back(std::move(request));
    }
  }
  held = std::move(still_held);
}

void WorkQueueService::RequeueChunksOf(int rank, const std::string& name) {
  for (auto& [queue_name, queue] : queues_) {
    int requeued = queue.Requeue(rank);
    if (requeued > 0) {
      LOG(WARNING) << "work queue '" << queue_name << "': " << requeued << " chunks of " << name
                   << " handed out again";
    }
    AnswerHeldRequests(queue);
  }
}

void WorkQueueService::SetPaused(bool paused) {
  paused_ = paused;
  for (auto& [name, queue] : queues_) {
    queue.set_paused(paused);
    if (!paused) AnswerHeldRequests(queue);
  }
}

bool WorkQueueService::NoneInFlight() const {
  for (const auto& [name, queue] : queues_) {
    if (queue.num_in_flight() > 0) return false;
  }
  return true;
}

size_t WorkQueueService::QueueBytes(const proto::WorkQueueSpec& spec) {
  // Per chunk: its message object, its owner and its progress record (scheduler/work_queue.h).
  constexpr size_t kChunkBookkeepingBytes =
      sizeof(proto::Chunk) + sizeof(int) + sizeof(WorkQueue::ChunkRecord);
  return spec.ByteSizeLong() + static_cast<size_t>(spec.chunks_size()) * kChunkBookkeepingBytes;
}

int WorkQueueService::HeldOf(const std::string& routing_id) const {
  int held = 0;
  for (const auto& [name, requests] : held_requests_) {
    for (const HeldRequest& request : requests) held += request.routing_id == routing_id;
  }
  return held;
}

bool WorkQueueService::IsWaitingForChunk(const std::string& name,
                                         const std::string& routing_id) const {
  auto held = held_requests_.find(name);
  if (held == held_requests_.end()) return false;
  for (const HeldRequest& request : held->second) {
    if (request.routing_id == routing_id) return true;
  }
  return false;
}

}  // namespace granary
