// Message: the unit of every exchange between Granary nodes.
//
// On the wire a message is one multi-part ZeroMQ message:
//   control plane: [header]
//   data plane:    [header][keys: uint64_t[n], or the encoding the header names (key_encoding,
//                  key_count)][values: float[m], or the encoding the header names
//                  (value_encoding, common/wire_codec.h)]
// (preceded by a routing-id frame on ROUTER sockets). The header is a proto::Header; the key
// and value frames are raw little-endian arrays whose exact byte sizes the header declares
// (key_bytes, value_bytes), so bulk data never passes through Protobuf.
//
// DecodeMessage is the single gate every received message passes: every size it reads (the
// header frame's, the key and value frames' and the header's key_bytes / value_bytes) is checked
// before any cast or allocation; a header frame over kMaxHeaderBytes, a frame count that does
// not match the command, a frame whose size differs from the header, an unknown command or a
// wrong cluster id is an error naming the sender, and the receiver goes on serving.
//
// Nothing leaks to a peer that has not shown it belongs to the cluster: a message refused
// before its cluster id matched (empty, oversized or unparsable header, wrong cluster id) is a
// *rejection* (IsRejection). The receiver answers it with MakeRejectionHeader's bare
// "rejected", which carries nothing the peer did not send (not even the receiver's cluster id
// or role), and logs the reason with the peer's address once per peer (RejectionLog).
//
// Thread-compatible: a Message is a value; sockets passed in must not be shared across threads.
#ifndef GRANARY_COMMON_MESSAGE_H_
#define GRANARY_COMMON_MESSAGE_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/proto/message.pb.h"
#include "zmq.hpp"
#include "zmq_addon.hpp"

namespace granary {

// The largest header frame DecodeMessage parses. A header carries metadata only (the largest,
// a REGISTER reply's cluster view with the whole config, is a few KB); a larger frame is refused
// unread, so its size never reaches Protobuf's int-sized parser.
constexpr size_t kMaxHeaderBytes = size_t{16} << 20;

struct Message {
  proto::Header header;
  // uint64_t[header.key_bytes / 8] (whole u64 words in every key encoding); empty on control
  // messages.
  zmq::message_t keys;
  zmq::message_t values;  // float[header.value_bytes / 4]; empty on control messages
};

// True for commands that carry key and value frames (PULL, PUSH and their replies).
bool IsDataCommand(proto::Command command);

// Sets header.key_bytes / value_bytes from the frames and sends the message. If `routing_id`
// is non-null (ROUTER sockets) it is sent first and consumed. Frames are moved into ZeroMQ,
// never copied. Returns Unavailable if ZeroMQ refuses the message (e.g. context terminated).
absl::Status SendMessage(zmq::socket_t& socket, Message&& message,
                         zmq::message_t* routing_id = nullptr);

// Parses and validates `frames` (routing id already removed) into `message`.
// `peer` describes where the frames came from (used in errors when the header cannot be
// parsed). `cluster_id` is the receiver's: a different one is rejected.
// On error `message->header` holds whatever could be parsed, so the caller can reply.
absl::Status DecodeMessage(std::vector<zmq::message_t>&& frames, const std::string& cluster_id,
                           const std::string& peer, Message* message);

// True if `status` (from DecodeMessage) refused a message from a peer that has not shown it
// belongs to the cluster: the reply must then be MakeRejectionHeader's, telling it nothing.
bool IsRejection(const absl::Status& status);

// The error text of every rejection reply.
inline constexpr char kRejectedText[] = "rejected";

// The whole reply to a rejected `request` (as far as it parsed): ERROR_REPLY with error
// "rejected", and only the request's own cluster id and request id echoed, so that a
// misconfigured node fails its request at once instead of at its deadline.
proto::Header MakeRejectionHeader(const proto::Header& request);

// Logs rejected messages or peers (LOG(WARNING), with the reason and the peer's address) once
// per peer address, so that a flood from one peer costs one log line. The one limiter of
// rejection logs: a role's message decoding, its ZAP handler (common/zap_handler.h) and its
// handshake monitor (common/handshake_monitor.h) each hold one. Remembers at most kMaxPeers
// addresses; past that it logs once that further peers go unlogged. Key it by IP address, not
// ip:port, or an attacker with many source ports grows neither the log nor the set.
// Thread-safe.
class RejectionLog {
 public:
  static constexpr size_t kMaxPeers = 4096;

  // What is rejected, as the log line says it: a message that arrived ("rejected a message
  // from ADDRESS") or a connecting peer refused before any message ("rejected a peer at
  // ADDRESS").
  enum class Rejected { kMessage, kPeer };

  // `receiver` names the node in log lines ("server 0", "scheduler").
  explicit RejectionLog(std::string receiver, Rejected what = Rejected::kMessage)
      : receiver_(std::move(receiver)), what_(what) {}
  RejectionLog(const RejectionLog&) = delete;
  RejectionLog& operator=(const RejectionLog&) = delete;

  // Logs `reason` for a rejection of `peer` if it is the first rejection of `peer`.
  // Returns true if it logged.
  bool Log(const std::string& peer, const absl::Status& reason);

 private:
  const std::string receiver_;
  const Rejected what_;
  std::mutex mutex_;
  absl::flat_hash_set<std::string> peers_;  // guarded by mutex_
  bool full_logged_ = false;                // guarded by mutex_
};

// "worker 3 (request 17)" or the peer description for a header that did not parse.
std::string DescribeSender(const proto::Header& header, const std::string& peer);

// The ZeroMQ peer address of a received frame ("127.0.0.1" for TCP), or "unknown peer".
std::string PeerAddress(zmq::message_t& frame);

// The one place a message header is started. Every header a node sends is built by one of
// these two (or, for a rejection, by MakeRejectionHeader), so the sender's identity is stamped
// the same way everywhere.
//
// The header of a message a node originates (a request, an order, a notice): `command`, the
// cluster id and the sender's role and rank. The rest (request id, table, shard-map version,
// payload fields) is the caller's to set.
proto::Header MakeHeader(proto::Command command, const std::string& cluster_id, proto::Role role,
                         int rank);

// The header of a reply to `request`: MakeHeader's fields with `command` and the replier's
// identity, and the request's request id, table, shard-map version and part, by which the
// requester matches the reply.
proto::Header MakeReplyHeader(const proto::Header& request, proto::Command command,
                              const std::string& cluster_id, proto::Role role, int rank);

// Moves `data` into a ZeroMQ frame without copying the array.
template <typename T>
zmq::message_t FrameFromVector(std::vector<T>&& data) {
  if (data.empty()) return zmq::message_t();
  auto* owned = new std::vector<T>(std::move(data));
  return zmq::message_t(
      owned->data(), owned->size() * sizeof(T),
      [](void*, void* hint) { delete static_cast<std::vector<T>*>(hint); }, owned);
}

// A frame over `bytes` bytes at `data` that lives inside an array `owner` keeps alive, without
// copying them: the frame holds one reference to `owner` and drops it when ZeroMQ is done with
// the bytes (after sending them, on whichever thread that is). Several frames may view slices
// of one owner. REQUIRES: nobody writes the bytes while any such frame exists.
zmq::message_t FrameOfShared(std::shared_ptr<const void> owner, const void* data, size_t bytes);

// A typed read-only view of a frame. Large ZeroMQ frames are heap-allocated and thus
// aligned; a small frame stored inside zmq_msg_t may not be, and is copied.
template <typename T>
class FrameArray {
 public:
  explicit FrameArray(const zmq::message_t& frame) {
    size_t count = frame.size() / sizeof(T);
    if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(T) == 0) {
      span_ = absl::Span<const T>(static_cast<const T*>(frame.data()), count);
    } else {
      copy_.resize(count);
      if (count > 0) std::memcpy(copy_.data(), frame.data(), count * sizeof(T));
      span_ = absl::Span<const T>(copy_);
    }
  }
  FrameArray(const FrameArray&) = delete;
  FrameArray& operator=(const FrameArray&) = delete;

  absl::Span<const T> span() const { return span_; }
  size_t size() const { return span_.size(); }

 private:
  std::vector<T> copy_;
  absl::Span<const T> span_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_MESSAGE_H_
