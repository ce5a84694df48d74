// DayClose: closing a training day once every worker finished (DESIGN.md "Daily incremental
// training"; SchedulerOptions::close_day_into).
//
// The steps, each a round of orders to every server (ServerOrders) or a checkpoint, one after
// the other: SHRINK (decay and evict stale rows), EXPORT_DELTA (the day's changed rows and
// tombstones to <close_day_into>/deltas/<day>/server-<rank>.delta, each file written under a
// temporary name, fsynced and renamed), a consistent checkpoint (the close's), then the
// publish: the checkpoint is moved to <close_day_into>/bases/<day> by one rename (an earlier
// base of the day is first renamed aside to bases/.<day>.replaced and removed only after), and
// last the report <close_day_into>/reports/<day>.close.json, written atomically, which lists
// the base's manifest id and every delta file with its rows, tombstones and bytes. The day is
// closed once that report exists and verifies (launch/daily.sh). A checkpoint under way when
// the close begins finishes first.
//
// Exactly once, whatever step a failure (kill -9 of the scheduler or a server, a failed
// publish) interrupts. Any failure ends the run; the re-run restores the newest checkpoint in
// the day's checkpoint_dir and closes again:
// - Before the close's checkpoint has its manifest, that newest checkpoint was taken before
//   the close: its servers hold the day un-shrunk, with the export marker where the previous
//   day left it. The re-run shrinks once and exports the whole day.
// - After it (failure in the publish or before the report), the newest checkpoint is the
//   close's own, holding the shrunk rows and the servers' DayCloseRecord
//   (ps/table_catalog.h): SHRINK is a no-op answering the recorded counts, and EXPORT_DELTA
//   exports again since the since-version the record fixed as the day began, so the delta is
//   the same whole day.
// - Once the publish moved the close's checkpoint to the base, the run's newest checkpoint is
//   again one taken before the close: the case above.
// So the published base always holds exactly one Shrink of the day, and base(day - 1) plus
// delta(day) equals it row for row. The close's checkpoint manifest says nothing of the publish.
//
// The publish (the moves, the report) runs on the scheduler's file thread (FileWorker), after
// any prune queued before it; the close ends (OK, through Advance) only once it finished, so
// the day is never reported closed before its base and report are in place.
//
// Fault injection (tests only, SchedulerOptions::fault_in_close): the scheduler SIGKILLs
// itself right after the named step, or the base's move fails ("publish_error").
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

// OK if `fault` is empty or a fault_in_close step (SchedulerOptions); InvalidArgument naming it
// otherwise.
absl::Status CheckCloseFault(const std::string& fault);

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
