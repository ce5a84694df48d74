#include "scheduler/membership.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/node_name.h"
#include "common/shard_map.h"
#include "glog/logging.h"

namespace granary {

Membership::Membership(const SchedulerOptions& options, SchedulerSocket& socket)
    : options_(options), socket_(socket) {}

void Membership::HandleRegister(const std::string& routing_id, const proto::Header& header,
                                bool closed, const JoinHook& on_join) {
  const proto::NodeInfo& node = header.node();
  auto existing = members_.find(routing_id);
  if (existing != members_.end() && existing->second.alive) return;  // duplicate REGISTER
  const bool is_server = node.role() == proto::SERVER;
  if (!is_server && node.role() != proto::WORKER) {
    Refuse(routing_id, header,
           absl::StrCat("only servers and workers register, not a ", RoleName(node.role())));
    return;
  }
  if (node.rank() != kNoRankRequested) {
    Refuse(routing_id, header,
           absl::StrCat("ranks are assigned by the scheduler in order of arrival; a ",
                        RoleName(node.role()), " may not ask for rank ", node.rank(),
                        " (REGISTER carries rank ", kNoRankRequested, ")"));
    return;
  }
  if (closed) {
    Refuse(routing_id, header, "the cluster is shutting down");
    return;
  }
  if (formed_ && !is_server) {
    JoinRunningCluster(routing_id, header, on_join);
    return;
  }
  if (formed_) {
    Refuse(routing_id, header,
           absl::StrCat("cluster already formed with ", options_.num_servers, " servers and ",
                        options_.num_workers,
                        " workers; a server is not replaced in a running cluster (losing one "
                        "rolls the run back to its newest checkpoint)"));
    return;
  }
  int servers = 0, workers = 0;
  for (const ClusterMember& m : pending_) {
    if (m.routing_id == routing_id) return;  // duplicate REGISTER
    (m.info.role() == proto::SERVER ? servers : workers)++;
  }
  if ((is_server && servers >= options_.num_servers) ||
      (!is_server && workers >= options_.num_workers)) {
    Refuse(routing_id, header,
           absl::StrCat("cluster expects only ",
                        is_server ? options_.num_servers : options_.num_workers, " ",
                        RoleName(node.role()), "s"));
    return;
  }
  pending_.push_back(ClusterMember{routing_id, node, absl::Now()});
  LOG(INFO) << "registered " << RoleName(node.role()) << " pid " << node.pid() << " from "
            << node.host() << (node.port() > 0 ? absl::StrCat(":", node.port()) : "");
  if (servers + workers + 1 == options_.num_servers + options_.num_workers) FormCluster();
}

void Membership::Refuse(const std::string& routing_id, const proto::Header& header,
                        const std::string& reason) {
  const proto::NodeInfo& node = header.node();
  LOG(WARNING) << "refused the registration of a " << RoleName(node.role()) << " (pid "
               << node.pid() << " on " << node.host() << "): " << reason;
  socket_.SendError(routing_id, header, reason);
}

void Membership::FormCluster() {
  int next_rank[2] = {0, 0};
  ShardMap shard_map = ShardMap::EvenSplit(options_.num_servers, /*version=*/1);
  *view_.mutable_shard_map() = shard_map.ToProto();
  *view_.mutable_config() = options_.config;
  for (ClusterMember& member : pending_) {
    member.info.set_rank(next_rank[member.info.role() == proto::SERVER ? 0 : 1]++);
    member.last_seen = absl::Now();
  }
  AssignIncarnations();
  for (const ClusterMember& member : pending_) *view_.add_nodes() = member.info;
  for (ClusterMember& member : pending_) {
    proto::Header header = socket_.NewHeader(proto::CLUSTER_VIEW);
    *header.mutable_view() = view_;
    *header.mutable_view()->mutable_you() = member.info;
    socket_.Send(member.routing_id, std::move(header));
    members_[member.routing_id] = member;
  }
  pending_.clear();
  formed_ = true;
  LOG(INFO) << "cluster formed: " << options_.num_servers << " servers, " << options_.num_workers
            << " workers; " << shard_map.DebugString();
}

void Membership::AssignIncarnations() {
  for (proto::Role role : {proto::SERVER, proto::WORKER}) {
    for (int rank = 0;; ++rank) {
      auto member = std::find_if(pending_.begin(), pending_.end(), [&](const ClusterMember& m) {
        return m.info.role() == role && m.info.rank() == rank;
      });
      if (member == pending_.end()) break;
      member->info.set_incarnation(next_incarnation_++);
    }
  }
}

void Membership::JoinRunningCluster(const std::string& routing_id, const proto::Header& header,
                                    const JoinHook& on_join) {
  if (members_.count(routing_id) > 0) {  // a live member's duplicate returned earlier
    Refuse(routing_id, header, "a member declared dead cannot register again");
    return;
  }
  // The lowest worker rank whose member died before its job was done, and that no live member
  // took over since.
  std::map<int, bool> taken;  // worker rank -> a live or finished member holds it
  for (const auto& [id, m] : members_) {
    if (m.info.role() != proto::WORKER) continue;
    taken[m.info.rank()] = taken[m.info.rank()] || m.alive || m.job_done;
  }
  int rank = -1;
  for (const auto& [r, held] : taken) {
    if (!held) {
      rank = r;
      break;
    }
  }
  if (rank < 0) {
    Refuse(routing_id, header,
           absl::StrCat("cluster already formed with ", options_.num_servers, " servers and ",
                        options_.num_workers, " workers, and no worker is dead to be replaced"));
    return;
  }
  ClusterMember joiner{routing_id, header.node(), absl::Now()};
  joiner.info.set_rank(rank);
  joiner.info.set_incarnation(next_incarnation_++);
  for (proto::NodeInfo& node : *view_.mutable_nodes()) {
    if (node.role() == proto::WORKER && node.rank() == rank) node = joiner.info;
  }
  const ClusterMember& member = members_[routing_id] = joiner;
  LOG(INFO) << "replacement " << NodeName(member.info)
            << " joined the running cluster (incarnation " << member.info.incarnation() << ", from "
            << member.info.host() << ")";
  for (const auto& [other_id, other] : members_) {
    if (!other.alive || other_id == routing_id) continue;
    proto::Header notice = socket_.NewHeader(proto::NODE_JOINED);
    *notice.mutable_node() = member.info;
    socket_.Send(other_id, std::move(notice));
  }
  proto::Header reply = socket_.NewHeader(proto::CLUSTER_VIEW);
  proto::ClusterView* view = reply.mutable_view();
  *view = view_;
  *view->mutable_you() = member.info;
  view->set_joined_running_job(true);
  if (on_join) on_join(member, view);
  socket_.Send(routing_id, std::move(reply));
}

ClusterMember* Membership::Touch(const std::string& routing_id) {
  auto member = members_.find(routing_id);
  if (member == members_.end()) return nullptr;
  member->second.last_seen = absl::Now();
  return &member->second;
}

bool Membership::IsPending(const std::string& routing_id) const {
  for (const ClusterMember& m : pending_) {
    if (m.routing_id == routing_id) return true;
  }
  return false;
}

std::string Membership::DescribeMissing() const {
  int servers = 0, workers = 0;
  for (const ClusterMember& m : pending_) (m.info.role() == proto::SERVER ? servers : workers)++;
  return absl::StrCat("have ", servers, " of ", options_.num_servers, " servers and ", workers,
                      " of ", options_.num_workers, " workers");
}

bool Membership::AllWorkersDone() const {
  for (const auto& [id, m] : members_) {
    if (m.info.role() == proto::WORKER && m.alive && !m.job_done) return false;
  }
  return true;
}

void Membership::CheckHeartbeats(const std::function<void(const ClusterMember&)>& on_death) {
  absl::Time now = absl::Now();
  for (auto& [id, member] : members_) {
    if (!member.alive || now - member.last_seen <= options_.heartbeat_timeout) continue;
    member.alive = false;
    member.death = absl::StrCat(
        "no heartbeat for ",
        absl::FormatDuration(absl::Trunc(now - member.last_seen, absl::Milliseconds(1))),
        " (timeout ", absl::FormatDuration(options_.heartbeat_timeout), "); declared dead at ",
        absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone()));
    LOG(ERROR) << NodeName(member.info) << " is dead: " << member.death << "; incarnation "
               << member.info.incarnation() << " is fenced";
    for (const auto& [other_id, other] : members_) {
      if (!other.alive) continue;
      proto::Header notice = socket_.NewHeader(proto::NODE_DEAD);
      *notice.mutable_node() = member.info;
      notice.set_error(member.death);
      socket_.Send(other_id, std::move(notice));
    }
    on_death(member);
  }
}

bool Membership::InGroup(const ClusterMember& member, const std::string& group) {
  if (group == "all") return true;
  if (group == "servers") return member.info.role() == proto::SERVER;
  return member.info.role() == proto::WORKER;
}

}  // namespace granary
