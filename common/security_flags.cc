#include "common/security_flags.h"

#include "glog/logging.h"

DEFINE_string(keys_dir, "",
              "Folder holding the cluster's CURVE keys (cluster.curve, mode 0600; written by "
              "granary_ctl --keys_dir=DIR keygen, or by the launchers into the run folder). Every "
              "link is then authenticated. Required unless --insecure_no_auth.");
DEFINE_bool(insecure_no_auth, false,
            "Run WITHOUT authentication (benchmarks only): anyone who can reach this process's "
            "ports can act as a cluster member. Logged as a warning at start.");

namespace granary {

absl::StatusOr<std::optional<CurveKeys>> CurveKeysFromFlags() {
  if (FLAGS_keys_dir.empty()) {
    if (!FLAGS_insecure_no_auth) {
      return absl::InvalidArgumentError(
          "--keys_dir is required: the folder of the cluster's CURVE keys (granary_ctl "
          "--keys_dir=DIR keygen makes them; the launchers do it for you), or --insecure_no_auth "
          "to run without authentication");
    }
    LOG(WARNING) << "--insecure_no_auth: this process's links are NOT authenticated; anyone who "
                    "can reach its ports can act as a cluster member";
    return std::nullopt;
  }
  if (FLAGS_insecure_no_auth) {
    return absl::InvalidArgumentError("--keys_dir and --insecure_no_auth contradict each other");
  }
  absl::StatusOr<CurveKeys> keys = LoadCurveKeys(FLAGS_keys_dir);
  if (!keys.ok()) return keys.status();
  LOG(INFO) << "links authenticated with the CURVE keys of " << FLAGS_keys_dir;
  return std::optional<CurveKeys>(*std::move(keys));
}

}  // namespace granary
