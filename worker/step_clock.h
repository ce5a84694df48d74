// StepClock: one worker's side of a step clock (scheduler/scheduler.h "Step clocks"), the
// bounded-staleness gate of the trainer (DESIGN.md "Consistency").
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
  // `steps` more steps of this worker are finished; reports the new count.
  void Finished(int64_t steps);
  // This worker trains no more steps of the clock (also done by the destructor).
  void Done();

 private:
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
