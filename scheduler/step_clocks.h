// StepClocks: the scheduler's side of the step clocks for bounded staleness (DESIGN.md
// "Consistency"; the worker's side is worker/step_clock.h).
//
// A worker reports, without waiting for an answer, how many steps (batches) of a clock it
// finished (CLOCK with the count), and that it is done with the clock (CLOCK with done). A
// clock's minimum is taken over the workers that count: alive, not finished with their job,
// not done with the clock, and not idle in a held NEXT_CHUNK of the work queue of the clock's
// name (a worker waiting for a chunk trains nothing, so it must not hold the others back); a
// worker that has not reported counts with 0 steps, and the minimum without any worker is
// INT64_MAX. Whenever a minimum or the ranks at it change (a report, a death, a worker going
// idle or getting a chunk) the scheduler pushes both to every live worker (MIN_CLOCK), so a
// worker waits for the others only when it is actually ahead and never polls (bulk-synchronous
// workers also take turns to push by it). A clock every live worker is done with is forgotten.
//
// A replacement worker (scheduler/membership.h) does not count for the clocks that exist when
// it joins: it starts its clock at 0 while the others are further on, so it must not hold them
// back, and it trains the rest of such an epoch without waiting either (the minimum is over
// the others, never below its own count). Clocks started after it joined count it as any
// worker. The steps its dead predecessor reported under the rank are forgotten, and every
// clock's minimum is pushed again, so the joiner learns it.
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_STEP_CLOCKS_H_
#define GRANARY_SCHEDULER_STEP_CLOCKS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/proto/message.pb.h"
#include "scheduler/membership.h"
#include "scheduler/scheduler_socket.h"
#include "scheduler/work_queue_service.h"

namespace granary {

class StepClocks {
 public:
  // `socket`, `membership` and `queues` must outlive this object.
  StepClocks(SchedulerSocket& socket, const Membership& membership, const WorkQueueService& queues);
  StepClocks(const StepClocks&) = delete;
  StepClocks& operator=(const StepClocks&) = delete;

  // A CLOCK report of worker `member`. A step count below one reported before is logged and
  // ignored; so is a report that would start a clock beyond kMaxClocks (logged once per
  // kIgnoredReportsPerLogLine), so that a worker cannot make the scheduler keep, and push,
  // clocks without bound.
  void HandleReport(const ClusterMember& member, const proto::Header& header);

  // Clocks in use at once, at most: a job uses one per epoch, forgotten once every worker is
  // done with it.
  static constexpr size_t kMaxClocks = 64;
  static constexpr int kIgnoredReportsPerLogLine = 100;
  // Replacement worker `joiner` joined: it does not count for the clocks that exist now.
  void HandleJoin(const ClusterMember& joiner);
  // Pushes every clock whose minimum (or the ranks at it) changed to the live workers, and
  // forgets the clocks no live worker uses any more. Call after every round of messages and
  // liveness checks.
  void Publish();

 private:
  struct Clock {
    std::map<int, int64_t> steps;       // finished steps, by worker rank
    std::set<int> done;                 // ranks done with the clock
    std::set<int> joined_after;         // ranks replaced after the clock started: not counted
    int64_t published = -1;             // the minimum last pushed (-1: none yet; workers assume 0)
    std::vector<int> published_behind;  // the ranks at it, as last pushed
  };
  bool Counts(const ClusterMember& member, const std::string& name, const Clock& clock) const;

  SchedulerSocket& socket_;
  const Membership& membership_;
  const WorkQueueService& queues_;
  std::map<std::string, Clock> clocks_;  // by name
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_STEP_CLOCKS_H_
