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
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_socket.h"
#include "scheduler/server_orders.h"

namespace granary {

class DayClose {
 public:
  // Every argument must outlive this object.
  DayClose(const SchedulerOptions& options, SchedulerSocket& socket, ServerOrders& orders,
           CheckpointCoordinator& checkpoints);
  DayClose(const DayClose&) = delete;
  DayClose& operator=(const DayClose&) = delete;

  // Whether this run closes its day (close_day_into) and has not begun to.
  bool due() const { return !options_.close_day_into.empty() && stage_ == Stage::kNotYet; }
  // Begins the close. REQUIRES: due().
  void Begin();

  // Moves the close on; call after every round of messages while the cluster is not shutting
  // down. Returns the error, once, if a step failed: the day is then not closed.
  std::optional<absl::Status> Advance();
  // Tells the close that a checkpoint ended. Returns, once, the outcome of the close if the
  // checkpoint was its own: OK once base and report are published, else the error. nullopt if
  // the checkpoint was not the close's.
  std::optional<absl::Status> CheckpointEnded(const CheckpointCoordinator::Outcome& checkpoint);

 private:
  enum class Stage { kNotYet, kShrink, kExport, kCheckpoint, kDone };
  // Moves the checkpoint in `checkpoint_dir` to the base and writes the report.
  absl::Status Publish(const std::string& checkpoint_dir);
  // "closing day D failed: ..." with `error`'s code, logged; ends the close.
  absl::Status Fail(const absl::Status& error);

  const SchedulerOptions& options_;
  SchedulerSocket& socket_;
  ServerOrders& orders_;
  CheckpointCoordinator& checkpoints_;
  Stage stage_ = Stage::kNotYet;
  absl::Time started_;
  std::vector<proto::Header> answers_;  // SHRINK and EXPORT_DELTA answers, for the report
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_DAY_CLOSE_H_
