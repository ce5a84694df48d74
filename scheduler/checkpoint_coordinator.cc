#include "scheduler/checkpoint_coordinator.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/message.h"
#include "common/shard_map.h"
#include "glog/logging.h"

namespace granary {

CheckpointCoordinator::CheckpointCoordinator(const SchedulerOptions& options,
                                             SchedulerSocket& socket, Membership& membership,
                                             ServerOrders& orders, FileWorker& files,
                                             FileWorker& manifests)
    : options_(options),
      socket_(socket),
      membership_(membership),
      orders_(orders),
      files_(files),
      manifests_(manifests) {}

absl::Status CheckpointCoordinator::RestoreNewest() {
  last_checkpoint_ = absl::Now();
  if (options_.checkpoint_dir.empty()) return absl::OkStatus();
  proto::ClusterView& view = *membership_.mutable_view();
  store_ = std::make_unique<CheckpointStore>(options_.checkpoint_dir, options_.remove_tree,
                                             options_.write_file);
  absl::StatusOr<std::optional<proto::CheckpointManifest>> newest = store_->Newest();
  if (!newest.ok()) return newest.status();
  absl::StatusOr<uint64_t> next_id = store_->NextId();
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
      view.set_restore_from(options_.base_dir);
      return absl::OkStatus();
    }
    LOG(INFO) << "no checkpoint in " << options_.checkpoint_dir << ": servers start empty";
    view.set_start_empty(true);
    return absl::OkStatus();
  }
  const proto::CheckpointManifest& manifest = **newest;
  const std::string dir = store_->DirOf(manifest.id());
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
  view.set_restore_from(dir);
  restored_ = manifest;
  int finished = 0;
  for (const proto::QueueProgress& queue : manifest.queues()) finished += queue.finished_size();
  LOG(INFO) << "rolling back to checkpoint " << dir << " (" << manifest.reason() << ", "
            << manifest.created() << "): " << manifest.queues_size() << " work queues, " << finished
            << " chunks finished";
  return absl::OkStatus();
}

absl::Status CheckpointCoordinator::RestoreQueueProgress(WorkQueue& queue) const {
  if (!restored_.has_value()) return absl::OkStatus();
  for (const proto::QueueProgress& progress : restored_->queues()) {
    if (progress.spec().name() != queue.name()) continue;
    // The chunks must be the same; how they are dealt to workers may change (another number
    // of workers, or consistency mode, after the restart).
    if (!SameChunks(progress.spec(), queue.spec())) {
      return absl::FailedPreconditionError(
          absl::StrCat("work queue '", queue.name(), "' has other chunks than in checkpoint ",
                       store_->DirOf(restored_->id()), " (", progress.spec().chunks_size(),
                       " there, ", queue.size(), " now): the input changed since"));
    }
    std::vector<uint64_t> finished(progress.finished().begin(), progress.finished().end());
    return queue.RestoreFinished(finished);
  }
  return absl::OkStatus();
}

void CheckpointCoordinator::Request(const std::string& reason) {
  if (store_ == nullptr || !wanted_.empty()) return;
  wanted_ = reason;
}

void CheckpointCoordinator::HandleCheckpointNow(const std::string& routing_id,
                                                const proto::Header& header) {
  if (store_ == nullptr) {
    socket_.SendError(routing_id, header, "this run keeps no checkpoints (no --checkpoint_dir)");
    return;
  }
  waiters_.push_back(HeldRequest{routing_id, header});
  // A checkpoint already under way serves the request: no chunk finishes after it began.
  if (!in_progress_.has_value()) {
    Request(absl::StrCat("requested by ", DescribeSender(header, "control client")));
  }
}

int CheckpointCoordinator::WaitersOf(const std::string& routing_id) const {
  int waiting = 0;
  for (const HeldRequest& waiter : waiters_) waiting += waiter.routing_id == routing_id;
  return waiting;
}

std::optional<CheckpointCoordinator::Outcome> CheckpointCoordinator::Advance() {
  if (store_ == nullptr) return std::nullopt;
  const absl::Time now = absl::Now();
  if (!in_progress_.has_value()) {
    if (options_.checkpoint_every_chunks > 0 &&
        chunks_since_checkpoint_ >= options_.checkpoint_every_chunks) {
      Request(absl::StrCat(chunks_since_checkpoint_, " chunks finished"));
    }
    if (options_.checkpoint_every > absl::ZeroDuration() && chunks_since_checkpoint_ > 0 &&
        now - last_checkpoint_ >= options_.checkpoint_every) {
      Request(absl::StrCat(absl::FormatDuration(options_.checkpoint_every), " passed"));
    }
    if (wanted_.empty()) return std::nullopt;
    in_progress_.emplace();
    in_progress_->id = next_checkpoint_id_++;
    in_progress_->reason = std::move(wanted_);
    wanted_.clear();
    in_progress_->deadline = now + options_.checkpoint_timeout;
    LOG(INFO) << "checkpoint " << in_progress_->id << " (" << in_progress_->reason
              << "): pausing the work queues until the chunks out are finished";
    queues_->SetPaused(true);
  }
  if (!in_progress_->ordered) {
    if (now > in_progress_->deadline) {
      return Finish(absl::DeadlineExceededError(
          absl::StrCat("chunks still out with workers after ",
                       absl::FormatDuration(options_.checkpoint_timeout))));
    }
    if (!queues_->NoneInFlight()) return std::nullopt;  // workers are still training chunks
    if (orders_.busy()) return std::nullopt;            // a day-close order is out; ours follows
    absl::Status prepared = store_->Prepare(in_progress_->id);
    if (!prepared.ok()) return Finish(prepared);
    proto::Header order = socket_.NewHeader(proto::CHECKPOINT);
    order.set_checkpoint_dir(store_->DirOf(in_progress_->id));
    orders_.Send(std::move(order));
    in_progress_->ordered = true;
    return std::nullopt;
  }
  if (in_progress_->manifest.has_value()) {
    if (!in_progress_->written.has_value()) {
      if (now <= in_progress_->deadline) return std::nullopt;
      // The write goes on alone; a manifest it writes late still describes this checkpoint.
      return Finish(absl::DeadlineExceededError(absl::StrCat(
          "manifest not written within ", absl::FormatDuration(options_.checkpoint_timeout))));
    }
    if (in_progress_->written->ok()) restored_ = std::move(in_progress_->manifest);
    return Finish(*in_progress_->written);
  }
  if (absl::Status error = orders_.Error(); !error.ok()) return Finish(error);
  if (!orders_.Complete()) return std::nullopt;
  orders_.Finish();

  proto::CheckpointManifest& manifest = in_progress_->manifest.emplace();
  manifest.set_id(in_progress_->id);
  manifest.set_created(absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone()));
  manifest.set_reason(in_progress_->reason);
  manifest.set_num_servers(options_.num_servers);
  *manifest.mutable_shard_map() = membership_.view().shard_map();
  for (const auto& [name, queue] : queues_->queues()) {
    proto::QueueProgress* progress = manifest.add_queues();
    *progress->mutable_spec() = queue.spec();
    for (uint64_t id : queue.FinishedIds()) progress->add_finished(id);
  }
  // Queues of the restored manifest that were not opened again keep their progress.
  if (restored_.has_value()) {
    for (const proto::QueueProgress& old : restored_->queues()) {
      if (queues_->queues().count(old.spec().name()) == 0) *manifest.add_queues() = old;
    }
  }
  in_progress_->deadline = now + options_.checkpoint_timeout;
  WriteManifestInBackground();
  return std::nullopt;
}

void CheckpointCoordinator::WriteManifestInBackground() {
  const uint64_t id = in_progress_->id;
  // The work gets copies: it runs on the manifest thread while this object goes on.
  manifests_.Post(
      absl::StrCat("writing the manifest of checkpoint ", id),
      [store = *store_, manifest = *in_progress_->manifest] {
        return store.WriteManifest(manifest);
      },
      [this, id](const absl::Status& status) {
        // A checkpoint that ended at its deadline meanwhile no longer waits for it.
        if (in_progress_.has_value() && in_progress_->id == id) in_progress_->written = status;
      });
}

CheckpointCoordinator::Outcome CheckpointCoordinator::Finish(const absl::Status& status) {
  const std::string dir = store_->DirOf(in_progress_->id);
  const uint64_t id = in_progress_->id;
  if (status.ok()) {
    LOG(INFO) << "checkpoint " << dir << " written (" << in_progress_->reason << ")";
    chunks_since_checkpoint_ = 0;
    last_checkpoint_ = absl::Now();
    PruneInBackground();
  } else {
    // No manifest: the folder does not count as a checkpoint; the run goes on and the next
    // checkpoint tries again.
    LOG(ERROR) << "checkpoint " << dir << " failed: " << status.message();
  }
  for (const HeldRequest& waiter : waiters_) {
    if (status.ok()) {
      proto::Header reply =
          MakeReplyHeader(waiter.header, proto::ACK, options_.cluster_id, proto::SCHEDULER, 0);
      reply.set_checkpoint_dir(dir);
      socket_.Send(waiter.routing_id, std::move(reply));
    } else {
      socket_.SendError(waiter.routing_id, waiter.header,
                        absl::StrCat("checkpoint ", dir, " failed: ", status.message()));
    }
  }
  waiters_.clear();
  if (in_progress_->ordered) orders_.Finish();
  in_progress_.reset();
  queues_->SetPaused(false);
  return Outcome{status, dir, id};
}

void CheckpointCoordinator::PruneInBackground() {
  if (prune_queued_) {
    prune_again_ = true;
    return;
  }
  prune_queued_ = true;
  // The work gets copies: it runs on the file thread while this object goes on.
  files_.Post(
      absl::StrCat("pruning checkpoints in ", store_->root()),
      [store = *store_, keep = options_.keep_checkpoints]() -> absl::Status {
        absl::StatusOr<int> pruned = store.Prune(keep);
        if (!pruned.ok()) return pruned.status();
        if (*pruned > 0) {
          LOG(INFO) << "pruned " << *pruned << " old checkpoint folder(s) in " << store.root();
        }
        return absl::OkStatus();
      },
      [this](const absl::Status& status) {
        if (!status.ok()) LOG(ERROR) << status.message();
        prune_queued_ = false;
        if (prune_again_) {
          prune_again_ = false;
          PruneInBackground();
        }
      });
}

}  // namespace granary
