// The trust-boundary flags every role (scheduler, server, worker) and granary_ctl share: the
// --keys_dir flag and its translation into the cluster's CURVE keys (common/curve_keys.h), and
// the socket limits (--max_message_bytes, --receive_hwm, --send_hwm) and their translation
// into SocketLimits (common/socket_options.h). Only main.cc files, the flag helpers of
// common/node_flags.cc and their tests include this.
#ifndef GRANARY_COMMON_SECURITY_FLAGS_H_
#define GRANARY_COMMON_SECURITY_FLAGS_H_

#include <optional>

#include "absl/status/statusor.h"
#include "common/curve_keys.h"
#include "common/socket_options.h"
#include "gflags/gflags.h"

DECLARE_string(keys_dir);
DECLARE_bool(insecure_no_auth);
DECLARE_int64(max_message_bytes);
DECLARE_int32(receive_hwm);
DECLARE_int32(send_hwm);

namespace granary {

// The keys of --keys_dir (LoadCurveKeys: errors name the file). Without --keys_dir a process
// refuses to run (InvalidArgument naming --keys_dir) unless --insecure_no_auth says it may run
// unauthenticated: then nullopt, and a warning says so. Both flags at once are an error.
absl::StatusOr<std::optional<CurveKeys>> CurveKeysFromFlags();

// The SocketLimits of --max_message_bytes, --receive_hwm and --send_hwm. InvalidArgument naming
// the flag if --max_message_bytes is below kMinMaxMessageBytes or a high-water mark is not
// positive (0 would mean "unbounded" to ZeroMQ).
absl::StatusOr<SocketLimits> SocketLimitsFromFlags();

// OK if a frame of `max_request_bytes` (a server's --max_request_bytes: the largest keys or
// values frame it admits) fits in `limits.max_message_bytes`; else InvalidArgument naming both
// flags, since such a server would admit requests that ZeroMQ drops before it sees them.
absl::Status CheckMessageBytesAdmitRequests(const SocketLimits& limits, uint64_t max_request_bytes);

}  // namespace granary

#endif  // GRANARY_COMMON_SECURITY_FLAGS_H_
