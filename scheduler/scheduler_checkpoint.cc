// Scheduler: consistent checkpoints and the roll-back to the newest one (see scheduler.h).
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/node_name.h"
#include "common/shard_map.h"
#include "glog/logging.h"
#include "scheduler/scheduler.h"

namespace granary {

absl::Status Scheduler::RestoreNewestCheckpoint() {
  last_checkpoint_ = absl::Now();
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
    view_.set_day(static_cast<uint32_t>(day - absl::CivilDay(1970, 1, 1)));
  }
  if (!options_.close_day_into.empty() &&
      (options_.day.empty() || options_.checkpoint_dir.empty())) {
    return absl::InvalidArgumentError("closing a day needs the day and a checkpoint_dir");
  }
  if (options_.checkpoint_dir.empty()) return absl::OkStatus();
  checkpoints_ = std::make_unique<CheckpointStore>(options_.checkpoint_dir);
  absl::StatusOr<std::optional<proto::CheckpointManifest>> newest = checkpoints_->Newest();
  if (!newest.ok()) return newest.status();
  absl::StatusOr<uint64_t> next_id = checkpoints_->NextId();
  if (!next_id.ok()) return next_id.status();
  next_checkpoint_id_ = *next_id;
  if (!newest->has_value()) {
    if (!options_.base_dir.empty()) {
      // The base must be a whole checkpoint: never start a day from half a model.
      if (!std::filesystem::exists(options_.base_dir + "/MANIFEST")) {
        return absl::NotFoundError(absl::StrCat("base ", options_.base_dir,
                                                " is not a closed day's checkpoint (no MANIFEST)"));
      }
      LOG(INFO) << "no checkpoint in " << options_.checkpoint_dir << ": servers start from base "
                << options_.base_dir;
      view_.set_restore_from(options_.base_dir);
      return absl::OkStatus();
    }
    LOG(INFO) << "no checkpoint in " << options_.checkpoint_dir << ": servers start empty";
    view_.set_start_empty(true);
    return absl::OkStatus();
  }
  const proto::CheckpointManifest& manifest = **newest;
  const std::string dir = checkpoints_->DirOf(manifest.id());
  if (manifest.num_servers() != options_.num_servers) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint ", dir, " was taken with ", manifest.num_servers(), " servers; this run has ",
        options_.num_servers, " (start with that many, or with an empty --checkpoint_dir)"));
  }
  if (manifest.shard_map().SerializeAsString() !=
      ShardMap::EvenSplit(options_.num_servers, /*version=*/1).ToProto().SerializeAsString()) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", dir, " has another shard map than this run"));
  }
  view_.set_restore_from(dir);
  restored_ = manifest;
  int finished = 0;
  for (const proto::QueueProgress& queue : manifest.queues()) finished += queue.finished_size();
  LOG(INFO) << "rolling back to checkpoint " << dir << " (" << manifest.reason() << ", "
            << manifest.created() << "): " << manifest.queues_size() << " work queues, " << finished
            << " chunks finished";
  return absl::OkStatus();
}

absl::Status Scheduler::RestoreQueueProgress(WorkQueue& queue) const {
  if (!restored_.has_value()) return absl::OkStatus();
  for (const proto::QueueProgress& progress : restored_->queues()) {
    if (progress.spec().name() != queue.name()) continue;
    // The chunks must be the same; how they are dealt to workers may change (another number
    // of workers, or consistency mode, after the restart).
    if (!SameChunks(progress.spec(), queue.spec())) {
      return absl::FailedPreconditionError(
          absl::StrCat("work queue '", queue.name(), "' has other chunks than in checkpoint ",
                       checkpoints_->DirOf(restored_->id()), " (", progress.spec().chunks_size(),
                       " there, ", queue.size(), " now): the input changed since"));
    }
    std::vector<uint64_t> finished(progress.finished().begin(), progress.finished().end());
    return queue.RestoreFinished(finished);
  }
  return absl::OkStatus();
}

void Scheduler::RequestCheckpoint(const std::string& reason) {
  if (checkpoints_ == nullptr || !checkpoint_wanted_.empty()) return;
  checkpoint_wanted_ = reason;
}

void Scheduler::PauseQueues(bool paused) {
  for (auto& [name, queue] : queues_) {
    queue.set_paused(paused);
    if (!paused) AnswerHeldRequests(queue);
  }
}

void Scheduler::AdvanceCheckpoint() {
  if (checkpoints_ == nullptr || !formed_ || shutting_down_) return;
  const absl::Time now = absl::Now();
  if (!checkpoint_.has_value()) {
    if (options_.checkpoint_every_chunks > 0 &&
        chunks_since_checkpoint_ >= options_.checkpoint_every_chunks) {
      RequestCheckpoint(absl::StrCat(chunks_since_checkpoint_, " chunks finished"));
    }
    if (options_.checkpoint_every > absl::ZeroDuration() && chunks_since_checkpoint_ > 0 &&
        now - last_checkpoint_ >= options_.checkpoint_every) {
      RequestCheckpoint(absl::StrCat(absl::FormatDuration(options_.checkpoint_every), " passed"));
    }
    if (checkpoint_wanted_.empty()) return;
    checkpoint_.emplace();
    checkpoint_->id = next_checkpoint_id_++;
    checkpoint_->reason = std::move(checkpoint_wanted_);
    checkpoint_wanted_.clear();
    checkpoint_->deadline = now + options_.checkpoint_timeout;
    LOG(INFO) << "checkpoint " << checkpoint_->id << " (" << checkpoint_->reason
              << "): pausing the work queues until the chunks out are finished";
    PauseQueues(true);
  }
  if (!checkpoint_->ordered) {
    if (now > checkpoint_->deadline) {
      FinishCheckpoint(absl::DeadlineExceededError(
          absl::StrCat("chunks still out with workers after ",
                       absl::FormatDuration(options_.checkpoint_timeout))));
      return;
    }
    for (const auto& [name, queue] : queues_) {
      if (queue.num_in_flight() > 0) return;  // workers are still training chunks
    }
    if (round_.has_value()) return;  // a day-close order is out; ours follows
    absl::Status prepared = checkpoints_->Prepare(checkpoint_->id);
    if (!prepared.ok()) {
      FinishCheckpoint(prepared);
      return;
    }
    proto::Header order = NewHeader(proto::CHECKPOINT);
    order.set_checkpoint_dir(checkpoints_->DirOf(checkpoint_->id));
    SendOrderToServers(std::move(order));
    checkpoint_->ordered = true;
    return;
  }
  if (absl::Status error = RoundError(); !error.ok()) {
    FinishCheckpoint(error);
    return;
  }
  if (!RoundComplete()) return;
  round_.reset();

  proto::CheckpointManifest manifest;
  manifest.set_id(checkpoint_->id);
  manifest.set_created(absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone()));
  manifest.set_reason(checkpoint_->reason);
  manifest.set_num_servers(options_.num_servers);
  *manifest.mutable_shard_map() = view_.shard_map();
  for (const auto& [name, queue] : queues_) {
    proto::QueueProgress* progress = manifest.add_queues();
    *progress->mutable_spec() = queue.spec();
    for (uint64_t id : queue.FinishedIds()) progress->add_finished(id);
  }
  // Queues of the restored manifest that were not opened again keep their progress.
  if (restored_.has_value()) {
    for (const proto::QueueProgress& old : restored_->queues()) {
      if (queues_.count(old.spec().name()) == 0) *manifest.add_queues() = old;
    }
  }
  absl::Status written = checkpoints_->WriteManifest(manifest);
  if (written.ok()) restored_ = manifest;
  FinishCheckpoint(written);
}

void Scheduler::SendOrderToServers(proto::Header order) {
  round_.emplace();
  round_->command = order.command();
  round_->request_id = next_order_id_++;
  round_->deadline = absl::Now() + options_.checkpoint_timeout;
  order.set_request_id(round_->request_id);
  for (const auto& [id, member] : members_) {
    if (member.info.role() == proto::SERVER) Send(id, order);
  }
}

void Scheduler::HandleOrderAnswer(const Member& server, const proto::Header& answer) {
  if (!round_.has_value() || answer.request_id() != round_->request_id) {
    LOG(WARNING) << "ignoring a late answer from " << NodeName(server.info);
    return;
  }
  if (answer.command() == proto::ERROR_REPLY) {
    if (round_->error.empty()) round_->error = answer.error();
    return;
  }
  round_->answers[server.info.rank()] = answer;
}

absl::Status Scheduler::RoundError() const {
  if (!round_->error.empty()) return absl::UnavailableError(round_->error);
  std::vector<std::string> missing;
  for (const auto& [id, member] : members_) {
    if (member.info.role() != proto::SERVER || round_->answers.count(member.info.rank()) > 0) {
      continue;
    }
    if (!member.alive) {
      return absl::UnavailableError(absl::StrCat(NodeName(member.info), " died"));
    }
    missing.push_back(NodeName(member.info));
  }
  if (absl::Now() > round_->deadline) {
    return absl::DeadlineExceededError(absl::StrCat(
        proto::Command_Name(round_->command), ": no answer within ",
        absl::FormatDuration(options_.checkpoint_timeout), " from ", absl::StrJoin(missing, ", ")));
  }
  return absl::OkStatus();
}

bool Scheduler::RoundComplete() const {
  return static_cast<int>(round_->answers.size()) == options_.num_servers;
}

void Scheduler::FinishCheckpoint(const absl::Status& outcome) {
  const std::string dir = checkpoints_->DirOf(checkpoint_->id);
  if (outcome.ok()) {
    LOG(INFO) << "checkpoint " << dir << " written (" << checkpoint_->reason << ")";
    chunks_since_checkpoint_ = 0;
    last_checkpoint_ = absl::Now();
    absl::StatusOr<int> pruned = checkpoints_->Prune(options_.keep_checkpoints);
    if (!pruned.ok()) LOG(ERROR) << pruned.status().message();
  } else {
    // No manifest: the folder does not count as a checkpoint; the run goes on and the next
    // checkpoint tries again.
    LOG(ERROR) << "checkpoint " << dir << " failed: " << outcome.message();
  }
  for (const HeldRequest& waiter : checkpoint_waiters_) {
    if (outcome.ok()) {
      proto::Header reply =
          MakeReplyHeader(waiter.header, proto::ACK, options_.cluster_id, proto::SCHEDULER, 0);
      reply.set_checkpoint_dir(dir);
      Send(waiter.routing_id, std::move(reply));
    } else {
      SendError(waiter.routing_id, waiter.header,
                absl::StrCat("checkpoint ", dir, " failed: ", outcome.message()));
    }
  }
  checkpoint_waiters_.clear();
  if (checkpoint_->ordered) round_.reset();
  checkpoint_.reset();
  PauseQueues(false);
  if (day_close_ == DayClose::kCheckpoint) {
    absl::Status published = outcome.ok() ? PublishDay(dir) : outcome;
    day_close_ = DayClose::kDone;
    if (!published.ok()) {
      run_outcome_ = absl::Status(published.code(), absl::StrCat("closing day ", options_.day,
                                                                 " failed: ", published.message()));
      LOG(ERROR) << run_outcome_.message();
    }
    StartShutdown(published.ok() ? absl::StrCat("day ", options_.day, " closed")
                                 : std::string(run_outcome_.message()));
    return;
  }
  if (!shutdown_after_checkpoint_.empty()) StartShutdown(shutdown_after_checkpoint_);
}

}  // namespace granary
