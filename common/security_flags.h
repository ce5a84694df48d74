// The --keys_dir flag every role (scheduler, server, worker) and granary_ctl share, and its
// translation into the cluster's CURVE keys (common/curve_keys.h). Only main.cc files, the
// flag helpers of common/node_flags.cc and their tests include this.
#ifndef GRANARY_COMMON_SECURITY_FLAGS_H_
#define GRANARY_COMMON_SECURITY_FLAGS_H_

#include <optional>

#include "absl/status/statusor.h"
#include "common/curve_keys.h"
#include "gflags/gflags.h"

DECLARE_string(keys_dir);
DECLARE_bool(insecure_no_auth);

namespace granary {

// The keys of --keys_dir (LoadCurveKeys: errors name the file). Without --keys_dir a process
// refuses to run (InvalidArgument naming --keys_dir) unless --insecure_no_auth says it may run
// unauthenticated: then nullopt, and a warning says so. Both flags at once are an error.
absl::StatusOr<std::optional<CurveKeys>> CurveKeysFromFlags();

}  // namespace granary

#endif  // GRANARY_COMMON_SECURITY_FLAGS_H_
