#include "common/security_flags.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

DEFINE_string(keys_dir, "",
              "Folder holding the cluster's CURVE keys (cluster.curve, mode 0600; written by "
              "granary_ctl --keys_dir=DIR keygen, or by the launchers into the run folder). Every "
              "link is then authenticated. Required unless --insecure_no_auth.");
DEFINE_bool(insecure_no_auth, false,
            "Run WITHOUT authentication (benchmarks only): anyone who can reach this process's "
            "ports can act as a cluster member. Logged as a warning at start.");
DEFINE_int64(max_message_bytes, granary::SocketLimits().max_message_bytes,
             "Largest message frame accepted from a peer (ZMQ_MAXMSGSIZE), in bytes; a peer "
             "sending a larger one is disconnected. At least 1 MiB, and on a server at least "
             "--max_request_bytes. Give every role the same value.");
DEFINE_int32(receive_hwm, granary::SocketLimits().receive_hwm,
             "Messages queued from one peer connection (ZMQ_RCVHWM) before this process stops "
             "reading it (TCP backpressure). Positive.");
DEFINE_int32(send_hwm, granary::SocketLimits().router_send_hwm,
             "Replies queued for one peer connection of a listening socket (the scheduler's, a "
             "server's; ZMQ_SNDHWM) before further ones are dropped (the peer's request then "
             "fails by its deadline). Positive.");

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

absl::StatusOr<SocketLimits> SocketLimitsFromFlags() {
  if (FLAGS_max_message_bytes < kMinMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--max_message_bytes=", FLAGS_max_message_bytes,
                                                   " is below the minimum ", kMinMaxMessageBytes,
                                                   " (1 MiB): every header must fit in a frame"));
  }
  for (const auto& [name, value] : {std::pair<const char*, int>{"receive_hwm", FLAGS_receive_hwm},
                                    std::pair<const char*, int>{"send_hwm", FLAGS_send_hwm}}) {
    if (value <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name, "=", value, " must be positive (ZeroMQ would take 0 as unbounded)"));
    }
  }
  SocketLimits limits;
  limits.max_message_bytes = FLAGS_max_message_bytes;
  limits.receive_hwm = FLAGS_receive_hwm;
  limits.router_send_hwm = FLAGS_send_hwm;
  return limits;
}

absl::Status CheckMessageBytesAdmitRequests(const SocketLimits& limits,
                                            uint64_t max_request_bytes) {
  if (max_request_bytes <= static_cast<uint64_t>(limits.max_message_bytes)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--max_message_bytes=", limits.max_message_bytes,
                   " is below --max_request_bytes=", max_request_bytes,
                   ": ZeroMQ would drop the largest requests the server admits before it "
                   "sees them; raise --max_message_bytes or lower --max_request_bytes"));
}

}  // namespace granary
