#include "scheduler/barriers.h"

#include "absl/strings/str_cat.h"
#include "common/node_name.h"
#include "glog/logging.h"

namespace granary {

Barriers::Barriers(SchedulerSocket& socket, const Membership& membership)
    : socket_(socket), membership_(membership) {}

void Barriers::HandleBarrier(const std::string& routing_id, const proto::Header& header) {
  const std::string& group = header.barrier_group();
  if (membership_.members().count(routing_id) == 0) {
    socket_.SendError(routing_id, header, "barrier from a node that is not a cluster member");
    return;
  }
  if (group != "all" && group != "servers" && group != "workers") {
    proto::Header release = socket_.NewHeader(proto::BARRIER_RELEASE);
    release.set_barrier_name(header.barrier_name());
    release.set_error(
        absl::StrCat("unknown barrier group '", group, "' (use all, servers or workers)"));
    socket_.Send(routing_id, std::move(release));
    return;
  }
  if (released_.count(header.barrier_name()) > 0) {
    proto::Header release = socket_.NewHeader(proto::BARRIER_RELEASE);
    release.set_barrier_name(header.barrier_name());
    socket_.Send(routing_id, std::move(release));
    return;
  }
  PendingBarrier& barrier = barriers_[header.barrier_name()];
  barrier.group = group;
  barrier.arrived.insert(routing_id);
  ReleaseComplete();
}

int Barriers::WaitingOf(const std::string& routing_id) const {
  int waiting = 0;
  for (const auto& [name, barrier] : barriers_) waiting += barrier.arrived.count(routing_id);
  return waiting;
}

void Barriers::ReleaseComplete() {
  for (auto it = barriers_.begin(); it != barriers_.end();) {
    bool complete = true;
    for (const auto& [id, member] : membership_.members()) {
      if (member.alive && Membership::InGroup(member, it->second.group) &&
          it->second.arrived.count(id) == 0) {
        complete = false;
      }
    }
    if (!complete) {
      ++it;
      continue;
    }
    for (const std::string& id : it->second.arrived) {
      proto::Header release = socket_.NewHeader(proto::BARRIER_RELEASE);
      release.set_barrier_name(it->first);
      socket_.Send(id, std::move(release));
    }
    VLOG(1) << "released barrier '" << it->first << "'";
    RememberReleased(it->first);
    it = barriers_.erase(it);
  }
}

void Barriers::MemberDied(const ClusterMember& dead) {
  if (dead.info.role() == proto::WORKER) {
    ReleaseComplete();
  } else {
    FailBarriersOf(dead);
  }
}

void Barriers::RememberReleased(const std::string& name) {
  if (!released_.insert(name).second) return;
  released_order_.push_back(name);
  if (released_order_.size() > kMaxReleasedBarriers) {
    released_.erase(released_order_.front());
    released_order_.pop_front();
  }
}

void Barriers::FailBarriersOf(const ClusterMember& dead) {
  const std::string name = NodeName(dead.info);
  for (auto it = barriers_.begin(); it != barriers_.end();) {
    if (!Membership::InGroup(dead, it->second.group)) {
      ++it;
      continue;
    }
    for (const std::string& waiting : it->second.arrived) {
      proto::Header release = socket_.NewHeader(proto::BARRIER_RELEASE);
      release.set_barrier_name(it->first);
      release.set_error(absl::StrCat(name, " died"));
      socket_.Send(waiting, std::move(release));
    }
    it = barriers_.erase(it);
  }
}

}  // namespace granary
