#include "scheduler/step_clocks.h"

#include <limits>

#include "common/node_name.h"
#include "glog/logging.h"

namespace granary {

StepClocks::StepClocks(SchedulerSocket& socket, const Membership& membership,
                       const WorkQueueService& queues)
    : socket_(socket), membership_(membership), queues_(queues) {}

void StepClocks::HandleReport(const ClusterMember& member, const proto::Header& header) {
  const proto::Clock& report = header.clock();
  if (clocks_.size() >= kMaxClocks && clocks_.count(report.name()) == 0) {
    LOG_EVERY_N(WARNING, kIgnoredReportsPerLogLine)
        << "ignored the report of " << NodeName(member.info) << " on clock '" << report.name()
        << "': the scheduler keeps at most " << kMaxClocks << " clocks in use (logged once per "
        << kIgnoredReportsPerLogLine << ")";
    return;
  }
  Clock& clock = clocks_[report.name()];
  const int rank = member.info.rank();
  if (report.done()) {
    clock.done.insert(rank);
    VLOG(1) << NodeName(member.info) << " is done with clock '" << report.name() << "'";
    return;
  }
  int64_t& steps = clock.steps[rank];
  if (report.step() < steps) {
    LOG(ERROR) << NodeName(member.info) << " reported step " << report.step() << " of clock '"
               << report.name() << "' after step " << steps << "; keeping " << steps;
    return;
  }
  steps = report.step();
}

void StepClocks::HandleJoin(const ClusterMember& joiner) {
  const int rank = joiner.info.rank();
  for (auto& [name, clock] : clocks_) {
    clock.steps.erase(rank);
    clock.done.erase(rank);
    clock.joined_after.insert(rank);
    // Pushed again by the next Publish, after the joiner got its view: it knows no minimum yet.
    clock.published = -1;
    VLOG(1) << NodeName(joiner.info) << " joined after clock '" << name
            << "' started: it does not count for it";
  }
}

bool StepClocks::Counts(const ClusterMember& member, const std::string& name,
                        const Clock& clock) const {
  if (member.info.role() != proto::WORKER || !member.alive || member.job_done) return false;
  if (clock.done.count(member.info.rank()) > 0) return false;
  if (clock.joined_after.count(member.info.rank()) > 0) return false;
  // Waiting for a chunk of the queue of the same name, it trains nothing and holds nobody back.
  return !queues_.IsWaitingForChunk(name, member.routing_id);
}

void StepClocks::Publish() {
  for (auto it = clocks_.begin(); it != clocks_.end();) {
    const std::string& name = it->first;
    Clock& clock = it->second;
    int64_t minimum = std::numeric_limits<int64_t>::max();
    std::vector<int> behind;
    bool any_live_worker_not_done = false;
    for (const auto& [id, member] : membership_.members()) {
      if (member.info.role() == proto::WORKER && member.alive && !member.job_done &&
          clock.done.count(member.info.rank()) == 0) {
        any_live_worker_not_done = true;
      }
      if (!Counts(member, name, clock)) continue;
      auto steps = clock.steps.find(member.info.rank());
      const int64_t step = steps == clock.steps.end() ? 0 : steps->second;
      if (step < minimum) {
        minimum = step;
        behind.clear();
      }
      if (step == minimum) behind.push_back(member.info.rank());
    }
    // The ranks at the minimum change alone too (BSP: a worker finished its push turn), and
    // workers waiting for their turn to push (StepClock::WaitToPush) need to know.
    if (minimum != clock.published || behind != clock.published_behind) {
      clock.published = minimum;
      clock.published_behind = behind;
      proto::Header update = socket_.NewHeader(proto::MIN_CLOCK);
      update.mutable_clock()->set_name(name);
      update.mutable_clock()->set_step(minimum);
      for (int rank : behind) update.mutable_clock()->add_behind(rank);
      for (const auto& [id, member] : membership_.members()) {
        if (member.info.role() == proto::WORKER && member.alive) socket_.Send(id, update);
      }
    }
    // Every worker is done with it (or dead): no further report can move it.
    if (!any_live_worker_not_done) {
      VLOG(1) << "clock '" << name << "' finished";
      it = clocks_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace granary
