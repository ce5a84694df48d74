// StepClock: one worker's side of a step clock (scheduler/step_clocks.h), the
// bounded-staleness gate of the trainer's batch pipelines (worker/train/batch_pipeline.h;
// DESIGN.md "Consistency").
//
// A step is one batch of this worker, whichever of its compute threads trains it; steps are
// numbered from 1 in the order the threads take their batches. A step is finished once its
// pushes are acknowledged, and the worker's clock is the number of its finished steps. Step t
// may start (issue its pulls) once every worker that still trains has finished t - 1 - s
// steps, s = max_staleness: with s = 0 (BSP) no worker starts a step before every other one
// finished the one before; a worker thus has at most s + 1 steps in flight, whatever its
// number of threads.
//
// Finished steps are reported without waiting; waiting happens only when this worker is
// actually ahead (the scheduler pushes each new minimum). The destructor reports the worker
// done with the clock, so that a worker that ran out of input, or failed, holds nobody back.
//
// Bulk-synchronous steps are also ordered inside (s = 0 only), so that what a step computes
// never depends on timing:
//   - no worker pushes step t before every worker that still trains has its pulls of step t
//     answered (else a fast worker's update could reach a slow worker's pull of the same
//     step);
//   - the workers push step t in rank order: worker r pushes once every worker still training
//     with a lower rank finished step t. The servers' optimizers (Adagrad, Adam) are not
//     linear in the gradients, so the order pushes are applied in changes the result.
// With a deterministic chunk assignment (scheduler/work_queue.h ROUND_ROBIN) bulk-synchronous
// runs then train bit for bit alike. To say both, the scheduler's clock counts two per step:
// 2t - 1 once the worker's pulls of step t are answered (Pulled), 2t once it is finished; a
// timeout's error names those counts. The price is about one scheduler round trip per step.
// With s > 0 nothing of this applies: steps overlap anyway, and the order is left to timing.
//
// Thread-safe: compute threads call every method concurrently.
#ifndef GRANARY_WORKER_STEP_CLOCK_H_
#define GRANARY_WORKER_STEP_CLOCK_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduler_client.h"

namespace granary {

class StepClock {
 public:
  // `scheduler` must outlive the clock. `name` names the clock on the scheduler (the work
  // queue the steps come from, so a worker waiting for a chunk of it does not count).
  // REQUIRES: max_staleness >= 0.
  StepClock(SchedulerClient* scheduler, std::string name, int max_staleness,
            absl::Duration timeout);
  ~StepClock();
  StepClock(const StepClock&) = delete;
  StepClock& operator=(const StepClock&) = delete;

  // Numbers this worker's next step.
  int64_t Begin();
  // Whether step `step` may start now, by the last minimum the scheduler pushed.
  bool MayStart(int64_t step) const;
  // Blocks until step `step` may start. DeadlineExceeded after the timeout, naming the
  // workers behind; Aborted or Unavailable if the cluster shuts down or the scheduler is lost.
  // REQUIRES: this thread's trained steps are finished (else BSP waits for itself).
  absl::Status WaitToStart(int64_t step) const;
  // The pulls of step `step` are answered (reported with s = 0 only; see above).
  // REQUIRES: called in step order, after the steps before it are Finished.
  void Pulled(int64_t step);
  // Blocks until this worker may push the gradients of step `step` (see above); returns at
  // once unless max_staleness is 0. Errors as WaitToStart.
  // REQUIRES: Pulled(step) was called.
  absl::Status WaitToPush(int64_t step) const;
  // `steps` more steps of this worker are finished; reports the new count.
  void Finished(int64_t steps);
  // This worker trains no more steps of the clock (also done by the destructor).
  void Done();

 private:
  bool bulk_synchronous() const { return max_staleness_ == 0; }

  SchedulerClient* const scheduler_;
  const std::string name_;
  const int max_staleness_;
  const absl::Duration timeout_;
  absl::Mutex mutex_;
  int64_t begun_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t finished_ ABSL_GUARDED_BY(mutex_) = 0;
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace granary

#endif  // GRANARY_WORKER_STEP_CLOCK_H_
