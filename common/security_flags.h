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

namespace granary {

// The keys of --keys_dir (LoadCurveKeys: errors name the file), or nullopt when --keys_dir is
// empty: then every link of this process is unauthenticated, which is logged as a warning.
absl::StatusOr<std::optional<CurveKeys>> CurveKeysFromFlags();

}  // namespace granary

#endif  // GRANARY_COMMON_SECURITY_FLAGS_H_
