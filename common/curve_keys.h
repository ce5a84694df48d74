// A cluster's ZeroMQ CURVE key material: how it is generated, stored, loaded and put on sockets.
//
// Scheme: ONE keypair per cluster, used on both sides of every link. A binding socket (the
// scheduler's and each server's ROUTER) is a CURVE server with the cluster's secret key; a
// connecting socket (every DEALER, granary_ctl) is a CURVE client whose own keypair is the same
// cluster keypair and whose server key is the cluster's public key. Why one and not a
// server/client pair: every role that binds also connects (a server connects to the scheduler),
// every member is trusted alike, and one secret to generate, copy and protect is the least that
// can go wrong. Holding the key file is what makes a process a member: a peer without it cannot
// complete the CURVE handshake, so ZeroMQ drops it before any Granary message is read. CURVE
// alone lets in any client that knows the server's public key; the binding roles therefore run
// a ZapHandler (common/zap_handler.h) that also demands the cluster's own public key as the
// client's, which only a holder of the secret key can present. Keep the whole file secret.
//
// Storage: KEYS_DIR/cluster.curve, two lines (public key, secret key; Z85, 40 characters each),
// mode 0600. A key file any other user can read or write is refused, naming it.
//
// In-process links (inproc://) never carry CURVE: they do not cross the trust boundary.
// Thread-safe: functions of their arguments, the file system and the socket passed in (which
// the caller owns).
#ifndef GRANARY_COMMON_CURVE_KEYS_H_
#define GRANARY_COMMON_CURVE_KEYS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zmq.hpp"

namespace granary {

// A CURVE key: kCurveKeyBytes bytes, written as kCurveKeyTextLength characters of Z85.
inline constexpr size_t kCurveKeyBytes = 32;
inline constexpr size_t kCurveKeyTextLength = 40;
// The file in a keys folder that holds the cluster keypair.
inline constexpr char kCurveKeyFileName[] = "cluster.curve";

struct CurveKeys {
  std::string public_key;  // Z85, kCurveKeyTextLength characters
  std::string secret_key;  // Z85, kCurveKeyTextLength characters
};

// A fresh keypair (zmq_curve_keypair). FailedPrecondition if libzmq was built without CURVE.
absl::StatusOr<CurveKeys> GenerateCurveKeys();

// Path of the key file in `keys_dir`.
std::string CurveKeyFilePath(const std::string& keys_dir);

// Writes `keys` to CurveKeyFilePath(keys_dir) with mode 0600, atomically (common/atomic_file.h);
// creates `keys_dir` (0700) if missing. Unavailable naming the path on failure.
absl::Status WriteCurveKeys(const std::string& keys_dir, const CurveKeys& keys);

// Loads the keypair of `keys_dir`. NotFound naming the file if it is missing; PermissionDenied
// naming the file and its mode if group or others have any access to it; InvalidArgument
// naming the file and line if a key is not 40 characters of valid Z85.
absl::StatusOr<CurveKeys> LoadCurveKeys(const std::string& keys_dir);

// Makes `socket`, which will bind a tcp:// endpoint, a CURVE server holding `curve`'s secret
// key. No-op without keys (an unauthenticated cluster). Call before bind().
void ConfigureCurveServer(zmq::socket_t& socket, const std::optional<CurveKeys>& curve);

// Makes `socket`, which will connect to a tcp:// endpoint, a CURVE client of the cluster: its
// own keypair and the server key are `curve`'s. No-op without keys. Call before connect().
void ConfigureCurveClient(zmq::socket_t& socket, const std::optional<CurveKeys>& curve);

}  // namespace granary

#endif  // GRANARY_COMMON_CURVE_KEYS_H_
