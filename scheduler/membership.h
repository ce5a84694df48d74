// Membership: who is in the cluster, their ranks, and whether they are alive.
//
// Servers and workers register (REGISTER); once the configured numbers did, the cluster forms:
// ranks are assigned in order of arrival (servers 0..N-1, workers 0..M-1), the key space is cut
// into an even shard map, and every node gets the ClusterView (ranks, addresses, shard map,
// table configs, and how servers start: empty or from a checkpoint). From then on every message
// of a member counts as a sign of life; a member silent for heartbeat_timeout is declared dead
// and every other live member is told so (NODE_DEAD). The dead stay in the member list, marked
// not alive.
//
// A replacement worker joins a running cluster: a worker's REGISTER after formation takes the
// lowest worker rank whose member is dead before its JOB_DONE, with a new incarnation. Its
// view is the cluster's with that rank's node replaced, `you` and joined_running_job set (the
// caller adds what the job needs to know, e.g. the barriers already released); every other
// live member is told (NODE_JOINED with header.node). The dead member stays in the list,
// not alive, beside its replacement. Without such a rank, or while the cluster shuts down, the
// REGISTER is refused with an error.
//
// Incarnations: every registration that gets a rank gets a token from one counter (1, 2, ...,
// at formation in rank order: servers, then workers; then +1 for every later joiner), carried
// in the view's `nodes` and `you`: it tells apart the processes that held one rank in turn.
// A member declared dead is fenced: nodes that hear of its death (NODE_DEAD names its
// incarnation, and the error says why) refuse its requests, and so does the scheduler
// (SchedulerImpl answers any message of a dead member with SHUTDOWN and the reason).
//
// Thread-compatible: the scheduler's single thread owns it.
#ifndef GRANARY_SCHEDULER_MEMBERSHIP_H_
#define GRANARY_SCHEDULER_MEMBERSHIP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/proto/message.pb.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_socket.h"

namespace granary {

// A registered node, as the scheduler knows it.
struct ClusterMember {
  std::string routing_id;
  proto::NodeInfo info;  // rank is -1 until the cluster formed
  absl::Time last_seen;
  bool alive = true;
  bool job_done = false;  // a worker that reported JOB_DONE
  // Once declared dead: why and when ("no heartbeat for 3.2s (timeout 3s); declared dead at
  // <RFC 3339 time>").
  std::string death = {};
};

class Membership {
 public:
  // `options` and `socket` must outlive this object.
  Membership(const SchedulerOptions& options, SchedulerSocket& socket);
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Called once a replacement worker took its rank, before its view is sent: the other
  // components take it in and complete `view` (the joiner's).
  using JoinHook = std::function<void(const ClusterMember& joiner, proto::ClusterView* view)>;

  // REGISTER carries this rank: the scheduler assigns ranks, a node does not ask for one.
  static constexpr int kNoRankRequested = -1;

  // Registers the sender of REGISTER `header`, or refuses it: answers with an error naming the
  // reason, logs it, and changes nothing. Refused: a role that is not server or worker; a
  // REGISTER asking for a rank (not kNoRankRequested); any while the cluster is `closed`; one
  // past num_servers servers or num_workers workers; once formed, a server, or a worker when
  // no worker rank is dead to be replaced (a live rank is never taken over), or a member
  // declared dead. Forms the cluster once the last node registered. After formation a worker
  // joins as a replacement (see above), calling `on_join`. A duplicate REGISTER of a live
  // member (or one waiting for formation) is ignored.
  void HandleRegister(const std::string& routing_id, const proto::Header& header, bool closed,
                      const JoinHook& on_join = nullptr);

  bool formed() const { return formed_; }
  // The member with `routing_id`, with its last_seen updated to now; null for a sender that is
  // not a member (or before the cluster formed).
  ClusterMember* Touch(const std::string& routing_id);
  const std::map<std::string, ClusterMember>& members() const { return members_; }
  // Registered, waiting for the cluster to form.
  const std::vector<ClusterMember>& pending() const { return pending_; }
  // Whether `routing_id` registered and waits for the cluster to form.
  bool IsPending(const std::string& routing_id) const;
  // "have 1 of 2 servers and 0 of 1 workers": who the cluster still waits for.
  std::string DescribeMissing() const;
  // Whether every live worker reported JOB_DONE.
  bool AllWorkersDone() const;

  // The view published at formation. Before formation the checkpoint roll-back fills in how
  // servers start (day, restore_from, start_empty).
  const proto::ClusterView& view() const { return view_; }
  proto::ClusterView* mutable_view() { return &view_; }

  // Declares dead every live member silent for longer than heartbeat_timeout: logs it, tells
  // every other live member (NODE_DEAD), then calls `on_death` with it, one member at a time.
  void CheckHeartbeats(const std::function<void(const ClusterMember&)>& on_death);

  // Whether `member` belongs to barrier group `group` ("all", "servers", else workers).
  static bool InGroup(const ClusterMember& member, const std::string& group);

 private:
  // Answers REGISTER `header` with an error carrying `reason`, and logs it.
  void Refuse(const std::string& routing_id, const proto::Header& header,
              const std::string& reason);
  void FormCluster();
  // Gives every member of pending_ (ranks assigned) its incarnation, servers then workers, each
  // in rank order.
  void AssignIncarnations();
  // A worker's REGISTER after formation: takes the lowest dead worker rank (see above), or
  // answers with an error.
  void JoinRunningCluster(const std::string& routing_id, const proto::Header& header,
                          const JoinHook& on_join);

  const SchedulerOptions& options_;
  SchedulerSocket& socket_;
  std::vector<ClusterMember> pending_;            // registered, cluster not yet formed
  std::map<std::string, ClusterMember> members_;  // by routing id, after formation
  bool formed_ = false;
  proto::ClusterView view_;
  uint64_t next_incarnation_ = 1;  // the next registration's NodeInfo.incarnation
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_MEMBERSHIP_H_
