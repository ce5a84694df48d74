// Barriers: named meeting points of a group of members ("all", "servers" or "workers").
//
// A member that reaches barrier `name` sends BARRIER and is answered (BARRIER_RELEASE) once
// every live member of the group reached it. A dead worker does not hold a barrier up: the job
// goes on with the workers left, so its barriers complete once every live member reached them.
// A barrier whose group loses a server fails: every member waiting in it is released with an
// error naming the dead server, since the run must roll back. An unknown group is answered at
// once with an error.
//
// The names of the last kMaxReleasedBarriers barriers released are kept: a member that reaches
// one of them later (a replacement worker catching up, scheduler/membership.h) is released at
// once, and a replacement's view lists them (ReleasedNames), so that it joins the job where it
// is. A name released is thus final: reusing a barrier name within a run needs a name not in
// that list (e.g. one per round).
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_BARRIERS_H_
#define GRANARY_SCHEDULER_BARRIERS_H_

#include <cstddef>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "common/proto/message.pb.h"
#include "scheduler/membership.h"
#include "scheduler/scheduler_socket.h"

namespace granary {

class Barriers {
 public:
  // `socket` and `membership` must outlive this object.
  Barriers(SchedulerSocket& socket, const Membership& membership);
  Barriers(const Barriers&) = delete;
  Barriers& operator=(const Barriers&) = delete;

  // A BARRIER from `routing_id`: records it and releases every barrier now complete. A sender
  // that is not a cluster member gets an ERROR_REPLY.
  void HandleBarrier(const std::string& routing_id, const proto::Header& header);
  // Call once, when `dead` was declared dead: a worker's death releases every barrier now
  // complete without it; a server's fails every barrier of its groups.
  void MemberDied(const ClusterMember& dead);
  // The names of the barriers released (at most kMaxReleasedBarriers, the newest), oldest
  // first.
  const std::deque<std::string>& ReleasedNames() const { return released_order_; }
  // How many barriers `routing_id` waits in.
  int WaitingOf(const std::string& routing_id) const;

  // How many released barrier names are kept.
  static constexpr size_t kMaxReleasedBarriers = 4096;

 private:
  // Fails every barrier of a group `dead` belonged to.
  void FailBarriersOf(const ClusterMember& dead);
  struct PendingBarrier {
    std::string group;
    std::set<std::string> arrived;  // routing ids
  };
  void ReleaseComplete();
  // Remembers barrier `name` released, forgetting the oldest beyond kMaxReleasedBarriers.
  void RememberReleased(const std::string& name);

  SchedulerSocket& socket_;
  const Membership& membership_;
  std::map<std::string, PendingBarrier> barriers_;  // by barrier name
  std::deque<std::string> released_order_;          // released names, oldest first
  std::set<std::string> released_;                  // the same names, to look up
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_BARRIERS_H_
