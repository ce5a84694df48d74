#include "common/security_flags.h"

#include "glog/logging.h"

DEFINE_string(
    keys_dir, "",
    "Folder holding the cluster's CURVE keys (cluster.curve, mode 0600; written by "
    "granary_ctl --keys_dir=DIR keygen, or by the launchers into the run folder). Every "
    "link is then authenticated. Empty: links are NOT authenticated (a warning says so).");

namespace granary {

absl::StatusOr<std::optional<CurveKeys>> CurveKeysFromFlags() {
  if (FLAGS_keys_dir.empty()) {
    LOG(WARNING) << "no --keys_dir: this process's links are NOT authenticated; anyone who can "
                    "reach its ports can act as a cluster member";
    return std::nullopt;
  }
  absl::StatusOr<CurveKeys> keys = LoadCurveKeys(FLAGS_keys_dir);
  if (!keys.ok()) return keys.status();
  LOG(INFO) << "links authenticated with the CURVE keys of " << FLAGS_keys_dir;
  return std::optional<CurveKeys>(*std::move(keys));
}

}  // namespace granary
