#include "worker/step_clock.h"

#include <utility>

namespace granary {

StepClock::StepClock(SchedulerClient* scheduler, std::string name, int max_staleness,
                     absl::Duration timeout)
    : scheduler_(scheduler),
      name_(std::move(name)),
      max_staleness_(max_staleness),
      timeout_(timeout) {}

StepClock::~StepClock() { Done(); }

int64_t StepClock::Begin() {
  absl::MutexLock lock(&mutex_);
  return ++begun_;
}

bool StepClock::MayStart(int64_t step) const {
  return scheduler_->WaitForClock(name_, step - 1 - max_staleness_, absl::ZeroDuration()).ok();
}

absl::Status StepClock::WaitToStart(int64_t step) const {
  return scheduler_->WaitForClock(name_, step - 1 - max_staleness_, timeout_);
}

void StepClock::Finished(int64_t steps) {
  if (steps == 0) return;
  // Reported under the lock, so the scheduler sees the counts in increasing order.
  absl::MutexLock lock(&mutex_);
  finished_ += steps;
  scheduler_->ReportClock(name_, finished_);
}

void StepClock::Done() {
  absl::MutexLock lock(&mutex_);
  if (done_) return;
  done_ = true;
  scheduler_->ReportClockDone(name_);
}

}  // namespace granary
