#include "common/node_name.h"

#include "absl/strings/str_cat.h"

namespace granary {

std::string RoleName(proto::Role role) {
  switch (role) {
    case proto::SCHEDULER:
      return "scheduler";
    case proto::SERVER:
      return "server";
    case proto::WORKER:
      return "worker";
    case proto::CONTROL:
      return "control";
    default:
      return "unknown";
  }
}

std::string NodeName(const proto::NodeInfo& node) {
  std::string name = absl::StrCat(RoleName(node.role()), " ", node.rank(), " (");
  if (node.port() > 0) absl::StrAppend(&name, node.host(), ":", node.port(), ", ");
  absl::StrAppend(&name, "pid ", node.pid(), ")");
  return name;
}

}  // namespace granary
