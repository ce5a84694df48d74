#include "worker/step_clock.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace granary {
namespace {

// Bulk-synchronous clocks count two per step (step_clock.h).
constexpr int64_t kCountsPerBspStep = 2;

// A wait's error, saying how a bulk-synchronous clock counts.
absl::Status ExplainBspCounts(const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(status.message(),
                                   " (bulk-synchronous: step t counts 2t - 1 once its pulls are "
                                   "answered, 2t once its pushes are)"));
}

}  // namespace

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
  const int64_t needed = step - 1 - max_staleness_;
  return scheduler_
      ->WaitForClock(name_, bulk_synchronous() ? kCountsPerBspStep * needed : needed,
                     absl::ZeroDuration())
      .ok();
}

absl::Status StepClock::WaitToStart(int64_t step) const {
  const int64_t needed = step - 1 - max_staleness_;
  if (!bulk_synchronous()) return scheduler_->WaitForClock(name_, needed, timeout_);
  return ExplainBspCounts(scheduler_->WaitForClock(name_, kCountsPerBspStep * needed, timeout_));
}

void StepClock::Pulled(int64_t step) {
  if (!bulk_synchronous()) return;
  absl::MutexLock lock(&mutex_);
  scheduler_->ReportClock(name_, kCountsPerBspStep * step - 1);
}

absl::Status StepClock::WaitToPush(int64_t step) const {
  if (!bulk_synchronous()) return absl::OkStatus();
  return ExplainBspCounts(scheduler_->WaitForClockTurn(name_, kCountsPerBspStep * step, timeout_));
}

void StepClock::Finished(int64_t steps) {
  if (steps == 0) return;
  // Reported under the lock, so the scheduler sees the counts in increasing order.
  absl::MutexLock lock(&mutex_);
  finished_ += steps;
  scheduler_->ReportClock(name_, bulk_synchronous() ? kCountsPerBspStep * finished_ : finished_);
}

void StepClock::Done() {
  absl::MutexLock lock(&mutex_);
  if (done_) return;
  done_ = true;
  scheduler_->ReportClockDone(name_);
}

}  // namespace granary
