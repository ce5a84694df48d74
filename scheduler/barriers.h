// Barriers: named meeting points of a group of members ("all", "servers" or "workers").
//
// A member that reaches barrier `name` sends BARRIER and is answered (BARRIER_RELEASE) once
// every live member of the group reached it. A dead worker does not hold a barrier up: the job
// goes on with the workers left, so its barriers complete once every live member reached them.
// A barrier whose group loses a server fails: every member waiting in it is released with an
// error naming the dead server, since the run must roll back. An unknown group is answered at
// once with an error.
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_BARRIERS_H_
#define GRANARY_SCHEDULER_BARRIERS_H_

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

 private:
  // Fails every barrier of a group `dead` belonged to.
  void FailBarriersOf(const ClusterMember& dead);
  struct PendingBarrier {
    std::string group;
    std::set<std::string> arrived;  // routing ids
  };
  void ReleaseComplete();

  SchedulerSocket& socket_;
  const Membership& membership_;
  std::map<std::string, PendingBarrier> barriers_;  // by barrier name
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_BARRIERS_H_
