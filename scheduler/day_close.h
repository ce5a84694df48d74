// DayClose: closing a training day once every worker finished (DESIGN.md "Daily incremental
// training"; SchedulerOptions::close_day_into).
//
// The steps, each a round of orders to every server (ServerOrders) or a checkpoint, one after
// the other: SHRINK (evict stale rows), EXPORT_DELTA (the day's changed rows and tombstones to
// <close_day_into>/deltas/<day>/), a consistent checkpoint, which is then moved to
// <close_day_into>/bases/<day> (replacing one of an earlier run of the day), and the report
// <close_day_into>/reports/<day>.close.json, written atomically. A checkpoint under way when the
// close begins finishes first.
//
// The publish (removing an earlier base of the day, the move, the report) runs on the
// scheduler's file thread (FileWorker), after any prune queued before it; the close ends (OK,
// through Advance) only once it finished, so the day is never reported closed before its base
// and report are in place.
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_DAY_CLOSE_H_
#define GRANARY_SCHEDULER_DAY_CLOSE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/proto/message.pb.h"
#include "scheduler/checkpoint_coordinator.h"
#include "scheduler/file_worker.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_socket.h"
#include "scheduler/server_orders.h"

namespace granary {

class DayClose {
 public:
  // Every argument must outlive this object.
  DayClose(const SchedulerOptions& options, SchedulerSocket& socket, ServerOrders& orders,
           CheckpointCoordinator& checkpoints, FileWorker& files);
  DayClose(const DayClose&) = delete;
  DayClose& operator=(const DayClose&) = delete;

  // Whether this run closes its day (close_day_into) and has not begun to.
  bool due() const { return !options_.close_day_into.empty() && stage_ == Stage::kNotYet; }
  // Begins the close. REQUIRES: due().
  void Begin();

  // Moves the close on; call after every round of messages (and FileWorker::RunFinished) while
  // the cluster is not shutting down. Returns the outcome of the close, once: OK once base and
  // report are published, else the error of the step that failed (the day is then not closed).
  std::optional<absl::Status> Advance();
  // Tells the close that a checkpoint ended. If it was the close's own, the publish is queued on
  // the file thread (its outcome comes through Advance), or, if the checkpoint failed, its error
  // is returned, once. nullopt otherwise.
  std::optional<absl::Status> CheckpointEnded(const CheckpointCoordinator::Outcome& checkpoint);

 private:
  enum class Stage { kNotYet, kShrink, kExport, kCheckpoint, kPublish, kDone };
  // "closing day D failed: ..." with `error`'s code, logged; ends the close.
  absl::Status Fail(const absl::Status& error);

  const SchedulerOptions& options_;
  SchedulerSocket& socket_;
  ServerOrders& orders_;
  CheckpointCoordinator& checkpoints_;
  FileWorker& files_;
  Stage stage_ = Stage::kNotYet;
  absl::Time started_;
  std::vector<proto::Header> answers_;     // SHRINK and EXPORT_DELTA answers, for the report
  std::optional<absl::Status> published_;  // the publish's outcome, once it ended
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_DAY_CLOSE_H_
