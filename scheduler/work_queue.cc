#include "scheduler/work_queue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace granary {

bool SameChunks(const proto::WorkQueueSpec& a, const proto::WorkQueueSpec& b) {
  proto::WorkQueueSpec chunks_of_a = a, chunks_of_b = b;
  for (proto::WorkQueueSpec* spec : {&chunks_of_a, &chunks_of_b}) {
    spec->clear_assignment();
    spec->clear_num_workers();
  }
  return chunks_of_a.SerializeAsString() == chunks_of_b.SerializeAsString();
}

absl::StatusOr<WorkQueue> WorkQueue::Create(proto::WorkQueueSpec spec) {
  if (spec.name().empty()) return absl::InvalidArgumentError("work queue without a name");
  for (int i = 0; i < spec.chunks_size(); ++i) {
    const proto::Chunk& chunk = spec.chunks(i);
    if (chunk.id() != static_cast<uint64_t>(i)) {
      return absl::InvalidArgumentError(
          absl::StrCat("work queue '", spec.name(), "': chunk ", i, " has id ", chunk.id()));
    }
    if (chunk.skip_lines() != 0) {
      return absl::InvalidArgumentError(absl::StrCat("work queue '", spec.name(), "': chunk ", i,
                                                     " sets skip_lines, which only the scheduler",
                                                     " sets when a chunk resumes"));
    }
    if (chunk.file().empty() || (chunk.end() != 0 && chunk.end() <= chunk.begin())) {
      return absl::InvalidArgumentError(absl::StrCat("work queue '", spec.name(), "': chunk ", i,
                                                     " ('", chunk.file(), "' bytes ", chunk.begin(),
                                                     "..", chunk.end(), ") is empty or unnamed"));
    }
  }
  if (spec.assignment() == proto::WorkQueueSpec::ROUND_ROBIN && spec.num_workers() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("work queue '", spec.name(),
                                                   "': round-robin assignment to ",
                                                   spec.num_workers(), " workers"));
  }
  return WorkQueue(std::move(spec));
}

WorkQueue::WorkQueue(proto::WorkQueueSpec spec)
    : spec_(std::move(spec)),
      round_robin_(spec_.assignment() == proto::WorkQueueSpec::ROUND_ROBIN),
      released_(round_robin_ ? spec_.num_workers() : 0, false),
      owner_(spec_.chunks_size(), kPending),
      records_(spec_.chunks_size()) {
  for (int i = 0; i < spec_.chunks_size(); ++i) pending_.push_back(i);
}

bool WorkQueue::MayTake(int worker, uint64_t id) const {
  if (!round_robin_) return true;
  const uint64_t dealt_to = id % released_.size();
  return dealt_to == static_cast<uint64_t>(worker) || released_[dealt_to];
}

std::optional<proto::Chunk> WorkQueue::Take(int worker) {
  if (paused_) return std::nullopt;
  auto next = std::find_if(pending_.begin(), pending_.end(),
                           [&](uint64_t id) { return MayTake(worker, id); });
  if (next == pending_.end()) return std::nullopt;
  const uint64_t id = *next;
  pending_.erase(next);
  owner_[id] = worker;
  ++in_flight_;
  proto::Chunk chunk = spec_.chunks(static_cast<int>(id));
  chunk.set_skip_lines(records_[id].lines_done);
  return chunk;
}

absl::Status WorkQueue::Finish(int worker, uint64_t chunk_id) {
  if (chunk_id >= owner_.size() || owner_[chunk_id] != worker) {
    std::string state = chunk_id >= owner_.size()       ? "does not exist"
                        : owner_[chunk_id] == kFinished ? "is already finished"
                        : owner_[chunk_id] == kPending
                            ? "is not handed out"
                            : absl::StrCat("is handed to worker ", owner_[chunk_id]);
    return absl::FailedPreconditionError(absl::StrCat("work queue '", name(), "': worker ", worker,
                                                      " finished chunk ", chunk_id, ", which ",
                                                      state));
  }
  owner_[chunk_id] = kFinished;
  records_[chunk_id].finished_by = worker;
  records_[chunk_id].batches_in_flight = 0;
  --in_flight_;
  ++finished_;
  return absl::OkStatus();
}

int WorkQueue::Requeue(int worker) {
  if (worker >= 0 && static_cast<size_t>(worker) < released_.size()) released_[worker] = true;
  std::vector<uint64_t> taken;
  for (uint64_t id = 0; id < owner_.size(); ++id) {
    if (owner_[id] == worker) taken.push_back(id);
  }
  // Back at the front, in their original order: they are the oldest work.
  for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
    ChunkRecord& record = records_[*it];
    record.partial_batches += record.batches_in_flight;
    record.batches_in_flight = 0;
    record.attempt_samples = 0;
    record.resumed_from = worker;
    record.resumed_at = record.lines_done;
    owner_[*it] = kPending;
    pending_.push_front(*it);
  }
  in_flight_ -= taken.size();
  requeued_chunks_ += taken.size();
  return static_cast<int>(taken.size());
}

absl::Status WorkQueue::RestoreFinished(const std::vector<uint64_t>& chunk_ids) {
  for (uint64_t id : chunk_ids) {
    if (id >= owner_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("work queue '", name(), "' has ", owner_.size(), " chunks, no chunk ", id));
    }
  }
  for (uint64_t id : chunk_ids) {
    if (owner_[id] == kFinished) continue;
    if (owner_[id] != kPending) --in_flight_;
    owner_[id] = kFinished;
    ++finished_;
  }
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [&](uint64_t id) { return owner_[id] == kFinished; }),
                 pending_.end());
  return absl::OkStatus();
}

absl::Status WorkQueue::RecordProgress(int worker, const proto::ChunkProgress& progress) {
  const uint64_t id = progress.chunk_id();
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("work queue '", name(), "': progress of chunk ",
                                                   id, " from worker ", worker, " ignored: ", why));
  };
  if (id >= owner_.size()) return refuse(absl::StrCat("the queue has ", owner_.size(), " chunks"));
  if (owner_[id] != worker) return refuse("the chunk is not handed to that worker");
  ChunkRecord& record = records_[id];
  const proto::Chunk& chunk = spec_.chunks(static_cast<int>(id));
  // Every line, its newline included, takes at least one byte of the range.
  const bool bounded = chunk.end() != 0;
  if (progress.lines_done() < record.lines_done ||
      (bounded && progress.lines_done() > chunk.end() - chunk.begin())) {
    return refuse(absl::StrCat(
        "lines_done ", progress.lines_done(), " is before the recorded ", record.lines_done,
        bounded ? absl::StrCat(" or beyond the ", chunk.end() - chunk.begin(),
                               " lines its bytes can hold")
                : ""));
  }
  if (progress.samples_trained() < record.attempt_samples ||
      progress.samples_trained() > progress.lines_done() - record.resumed_at) {
    return refuse(absl::StrCat("samples_trained ", progress.samples_trained(),
                               " is before the recorded ", record.attempt_samples,
                               " or beyond the ", progress.lines_done() - record.resumed_at,
                               " lines it read"));
  }
  // Each batch taken past the resume point holds at least one line of the range.
  if (bounded &&
      progress.batches_in_flight() > chunk.end() - chunk.begin() - progress.lines_done()) {
    return refuse(absl::StrCat("batches_in_flight ", progress.batches_in_flight(),
                               " is beyond the lines left in its bytes"));
  }
  record.samples_trained += progress.samples_trained() - record.attempt_samples;
  record.attempt_samples = progress.samples_trained();
  record.lines_done = progress.lines_done();
  record.batches_in_flight = progress.batches_in_flight();
  return absl::OkStatus();
}

proto::QueueTotals WorkQueue::Totals() const {
  proto::QueueTotals totals;
  totals.set_requeued_chunks(requeued_chunks_);
  for (uint64_t id = 0; id < owner_.size(); ++id) {
    totals.set_partial_batches(totals.partial_batches() + records_[id].partial_batches);
    if (owner_[id] == kFinished) {
      totals.set_samples_trained(totals.samples_trained() + records_[id].samples_trained);
    }
  }
  return totals;
}

std::vector<uint64_t> WorkQueue::FinishedIds() const {
  std::vector<uint64_t> ids;
  for (uint64_t id = 0; id < owner_.size(); ++id) {
    if (owner_[id] == kFinished) ids.push_back(id);
  }
  return ids;
}

}  // namespace granary
