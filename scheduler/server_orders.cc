#include "scheduler/server_orders.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/node_name.h"
#include "glog/logging.h"

namespace granary {

ServerOrders::ServerOrders(const SchedulerOptions& options, SchedulerSocket& socket,
                           const Membership& membership)
    : options_(options), socket_(socket), membership_(membership) {}

void ServerOrders::Send(proto::Header order) {
  round_.emplace();
  round_->command = order.command();
  round_->request_id = next_request_id_++;
  round_->deadline = absl::Now() + options_.checkpoint_timeout;
  order.set_request_id(round_->request_id);
  for (const auto& [id, member] : membership_.members()) {
    if (member.info.role() == proto::SERVER) socket_.Send(id, order);
  }
}

void ServerOrders::HandleAnswer(const ClusterMember& server, const proto::Header& answer) {
  if (!round_.has_value() || answer.request_id() != round_->request_id) {
    LOG(WARNING) << "ignoring a late answer from " << NodeName(server.info);
    return;
  }
  if (answer.command() == proto::ERROR_REPLY) {
    if (round_->error.empty()) round_->error = answer.error();
    return;
  }
  round_->answers[server.info.rank()] = answer;
}

absl::Status ServerOrders::Error() const {
  if (!round_->error.empty()) return absl::UnavailableError(round_->error);
  std::vector<std::string> missing;
  for (const auto& [id, member] : membership_.members()) {
    if (member.info.role() != proto::SERVER || round_->answers.count(member.info.rank()) > 0) {
      continue;
    }
    if (!member.alive) {
      return absl::UnavailableError(absl::StrCat(NodeName(member.info), " died"));
    }
    missing.push_back(NodeName(member.info));
  }
  if (absl::Now() > round_->deadline) {
    return absl::DeadlineExceededError(absl::StrCat(
        proto::Command_Name(round_->command), ": no answer within ",
        absl::FormatDuration(options_.checkpoint_timeout), " from ", absl::StrJoin(missing, ", ")));
  }
  return absl::OkStatus();
}

bool ServerOrders::Complete() const {
  return static_cast<int>(round_->answers.size()) == options_.num_servers;
}

}  // namespace granary
