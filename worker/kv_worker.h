// KVWorker: a worker's client of the parameter servers, in ps-lite's shape.
//
//   int64_t id = worker.Pull("item_emb", keys, &rows);   // returns at once
//   ...compute...
//   absl::Status s = worker.Wait(id);                     // blocks until rows are filled
//
// Keys may come in any order and repeat. A request deduplicates them (summing the gradients
// of repeated keys on Push), slices them by the shard map, sends one part to each owning
// server in parallel, and reassembles the replies in the caller's order (repeated keys get
// the same row). Each request has a deadline; a server that times out, answers with an error,
// or is reported dead makes Wait return an error naming the request, the table and the
// server — never a hang. Every request carries this worker's incarnation (the view's
// you().incarnation), by which servers refuse the requests of a fenced worker.
//
// Copying or zero-copy, by the caller's choice of overload. The span forms copy the caller's
// arrays once, into the frames, and the vector Pull copies the rows once, out of the reply.
// The zero-copy forms copy nothing in user space: Push and Pull of SharedArrays send slices of
// the arrays themselves, the frames holding references until ZeroMQ has sent them, and a Pull
// into PulledRows keeps the reply messages as the rows' storage. Ownership is in the types: a
// SharedArray must not change while shared; a PulledRows owns what it shows.
//
// Thread-safe: Pull, Push and Wait may be called from any threads concurrently.
//
// There is no I/O thread between the caller and ZeroMQ: each calling thread gets its own
// channel (a DEALER socket per server), sends its requests on it itself, and Wait receives
// the replies on the channel the request went out on, so a round trip costs the same thread
// wake-ups as a bare ZeroMQ exchange. Whoever waits receives every reply that arrives on that
// channel, completing other requests too; Wait on a request sent by another thread takes
// turns on that thread's channel. Threads beyond `max_channels` share channels.
#ifndef GRANARY_WORKER_KV_WORKER_H_
#define GRANARY_WORKER_KV_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/curve_keys.h"
#include "common/message.h"
#include "common/proto/message.pb.h"
#include "common/shard_map.h"
#include "common/socket_options.h"
#include "common/socket_poller.h"
#include "worker/error_feedback.h"
#include "zmq.hpp"

namespace granary {

// kTrain pulls may create rows on the servers; kEvaluate pulls read the model without
// changing it (no rows created, no admission counts, no "last seen" stamps).
enum class PullMode { kTrain, kEvaluate };

// An array whose ownership is shared with ZeroMQ: KVWorker's zero-copy Push sends slices of it
// as frames that each hold a reference, released once ZeroMQ has sent them (common/message.h,
// FrameOfShared). Nobody may change its contents while any reference is held elsewhere: to send
// other values, build another array.
template <typename T>
using SharedArray = std::shared_ptr<const std::vector<T>>;

// The rows of a Pull, read where they arrived: PulledRows owns the reply messages of its request
// (one per server the keys went to) and shows their rows by the caller's key positions, with no
// copy in between. KVWorker::Pull(table, keys, PulledRows*) fills it; it may be read once
// Wait(id) returned OK, and neither the caller nor anyone else may touch it between Pull and
// Wait. Once filled it depends on nothing else: it stays valid through later requests, other
// replies and the KVWorker's destruction, until it is destroyed, moved from or passed to Pull
// again. Thread-compatible: once filled, any threads may read it concurrently.
class PulledRows {
 public:
  PulledRows() = default;
  PulledRows(PulledRows&&) = default;
  PulledRows& operator=(PulledRows&&) = default;
  PulledRows(const PulledRows&) = delete;
  PulledRows& operator=(const PulledRows&) = delete;

  // The number of rows: the keys the caller pulled, repeats included.
  size_t size() const { return num_rows_; }
  int dim() const { return dim_; }

  // The dim floats of the caller's key `i` (repeated keys share one row). REQUIRES: i < size().
  absl::Span<const float> row(size_t i) const {
    const size_t unique = unique_of_.empty() ? i : unique_of_[i];
    size_t part = parts_.size() - 1;
    while (parts_[part].begin > unique) --part;  // parts ascend; a request has few
    return absl::Span<const float>(
        parts_[part].rows + (unique - parts_[part].begin) * static_cast<size_t>(dim_), dim_);
  }

  // True if all rows lie in one array in the caller's order (the keys were sorted and unique
  // and went to one server, or there were none); all() then returns it.
  bool contiguous() const { return unique_of_.empty() && parts_.size() <= 1; }
  // size() x dim floats, row i at i x dim. REQUIRES: contiguous().
  absl::Span<const float> all() const {
    return parts_.empty() ? absl::Span<const float>()
                          : absl::Span<const float>(parts_[0].rows, num_rows_ * dim_);
  }

  // Copies the rows, in the caller's order, into *values (size() x dim floats).
  void CopyTo(std::vector<float>* values) const;

 private:
  friend class KVWorker;
  // The rows of the unique keys [begin, next part's begin), ascending, from one server's reply.
  struct Part {
    size_t begin = 0;
    std::unique_ptr<zmq::message_t> frame;  // the reply's value frame; on the heap, so that
                                            // `rows` stays put when PulledRows moves
    std::vector<float> unaligned_copy;      // the rows, if the frame's bytes are misaligned
    const float* rows = nullptr;            // into *frame or unaligned_copy
  };

  // Empties it for a request of `num_rows` rows of `dim` floats, from `num_parts` replies.
  void Reset(int dim, size_t num_rows, size_t num_parts);
  // Keeps `frame` (rows of the unique keys from `begin` on) as part `part`.
  void TakePart(size_t part, size_t begin, zmq::message_t&& frame);

  int dim_ = 0;
  size_t num_rows_ = 0;
  std::vector<Part> parts_;
  // Empty when the caller's keys were sorted and unique; otherwise the unique key of each of
  // the caller's positions.
  std::vector<uint32_t> unique_of_;
};

struct KVWorkerOptions {
  std::string cluster_id = "granary";
  // The cluster's CURVE keys (common/curve_keys.h); nullopt: unauthenticated links.
  std::optional<CurveKeys> curve;
  // The bounds of every link's socket (common/socket_options.h).
  SocketLimits socket_limits;
  // A request not fully answered within this long fails with DeadlineExceeded.
  absl::Duration request_timeout = absl::Seconds(60);
  // Channels (a connection to every server each) at most; threads beyond this many share
  // them, which is correct but makes them take turns. Bounds sockets and file descriptors to
  // max_channels x servers.
  int max_channels = 32;
  // Connect to a server of this host over the ipc:// endpoint it advertises, if any
  // (common/ipc_endpoint.h); false: always over TCP.
  bool use_ipc = true;
  // Per table with a lossy push encoding (TableConfig.wire), the keys whose quantization error
  // is carried into their next push at most (worker/error_feedback.h).
  size_t max_residual_keys = ErrorFeedback::kDefaultMaxKeys;
  // For benchmarks (tests/bench/train_bench): called on the sending thread with each request
  // part's sorted unique keys of a table whose keys travel encoded (TableConfig.wire.keys),
  // before they are sent (encoded, or raw where the encoding would not be smaller). Empty (the
  // default): nothing is called.
  std::function<void(const std::string& table, absl::Span<const uint64_t> keys)> on_encoded_keys;
};

class KVWorker {
 public:
  // `view` is the ClusterView from SchedulerClient::Register().
  KVWorker(zmq::context_t* context, const proto::ClusterView& view, KVWorkerOptions options);
  // Fails outstanding requests. REQUIRES: no Pull, Push or Wait is running.
  ~KVWorker();
  KVWorker(const KVWorker&) = delete;
  KVWorker& operator=(const KVWorker&) = delete;

  // Checks the view and connects the calling thread's channel to every server.
  // InvalidArgument if the view is inconsistent (bad shard map, a server without an address).
  absl::Status Start();

  // The endpoint each server is connected to, by rank (ipc:// or tcp://; see
  // KVWorkerOptions::use_ipc). REQUIRES: Start() succeeded.
  const std::vector<std::string>& server_endpoints() const { return server_endpoints_; }

  // Fills *values with keys.size() * dim floats, row i for keys[i]. `values` must stay alive
  // and untouched until Wait(id) returns. `keys` may be reused as soon as Pull returns.
  int64_t Pull(const std::string& table, absl::Span<const uint64_t> keys,
               std::vector<float>* values, PullMode mode = PullMode::kTrain);

  // The zero-copy pull: fills *rows with views of the reply messages themselves (see
  // PulledRows), nothing copied. `rows` must stay alive and untouched until Wait(id) returns;
  // after that it is independent of this KVWorker. `keys` may be reused as soon as Pull
  // returns.
  int64_t Pull(const std::string& table, absl::Span<const uint64_t> keys, PulledRows* rows,
               PullMode mode = PullMode::kTrain);
  // The zero-copy pull with shared keys: sent as Push's shared arrays are, with no copy when
  // they are sorted and unique.
  int64_t Pull(const std::string& table, SharedArray<uint64_t> keys, PulledRows* rows,
               PullMode mode = PullMode::kTrain);

  // Sends gradients (keys.size() * dim floats, row-major) to be applied by the servers. Both
  // spans may be reused as soon as Push returns: they are copied once, into the frames.
  int64_t Push(const std::string& table, absl::Span<const uint64_t> keys,
               absl::Span<const float> grads);
  // The zero-copy push: when `keys` are sorted and unique, ZeroMQ sends slices of the two
  // arrays themselves, one per server (frames holding references, see SharedArray), with no
  // copy in user space. Otherwise the keys are deduplicated first (as above) into new arrays,
  // which are sent the same way. The arrays must not change while ZeroMQ holds them; the
  // caller may keep its references and push the same arrays again.
  int64_t Push(const std::string& table, SharedArray<uint64_t> keys, SharedArray<float> grads);
  // Push's zero-copy form for arrays the caller gives up: moved, not copied.
  int64_t Push(const std::string& table, std::vector<uint64_t>&& keys, std::vector<float>&& grads);

  // Dense tables (TableConfig.dense_size > 0): the whole vector, stored as blocks of dim
  // floats spread over the servers. PullDense fills *values with DensePaddedSize(table)
  // floats: the vector, then zero padding up to a whole block.
  int64_t PullDense(const std::string& table, std::vector<float>* values,
                    PullMode mode = PullMode::kTrain);
  // `grads` holds dense_size floats.
  int64_t PushDense(const std::string& table, absl::Span<const float> grads);
  size_t DensePaddedSize(const std::string& table) const;

  // Blocks until request `id` completes; returns its outcome. Each id may be waited once;
  // NotFound for an unknown or already-waited id.
  absl::Status Wait(int64_t id);

  // Fails every outstanding and future request that needs server `server_rank`.
  void MarkServerDead(int server_rank, const std::string& reason);
  // This worker was fenced (declared dead by the scheduler): fails every outstanding and
  // future request at once with FailedPrecondition carrying `reason`. The servers would refuse
  // them anyway; this only spares the round trips.
  void Fence(const std::string& reason);

  // Row width of `table`, or 0 if the cluster has no such table.
  int DimOf(const std::string& table) const;

  // Bytes one row of `table` takes in a pull reply's or a push's value frame under the table's
  // wire encoding (TableConfig.wire, common/wire_codec.h); 0 if there is no such table.
  size_t PullRowBytes(const std::string& table) const;
  size_t PushRowBytes(const std::string& table) const;
  // Key-frame bytes per key this worker has sent to `table`: 8 on the raw wire; under an
  // encoded one (TableConfig.wire.keys) the average over every frame sent so far (8 until one
  // was); 0 if there is no such table. What the bytes-per-sample figures count for keys.
  double KeyBytesPerKey(const std::string& table) const;

  int rank() const { return view_.you().rank(); }

 private:
  // A DEALER socket per server, used by one thread at a time: the thread sending on it, or
  // the thread receiving replies from it.
  struct Channel {
    std::mutex mutex;                    // held while sending or receiving
    std::vector<zmq::socket_t> dealers;  // by server rank
    // Waits for replies on the dealers (by server rank); told of every send.
    std::unique_ptr<SocketPoller> poller;
  };
  struct Part {
    int server_rank = 0;
    size_t begin = 0;  // range of unique keys [begin, end)
    size_t end = 0;
    bool done = false;
  };
  struct Request {
    int64_t id = 0;
    proto::Command command = proto::PULL;
    std::string table;
    int dim = 0;
    Channel* channel = nullptr;  // the replies arrive here
    std::vector<Part> parts;
    size_t parts_left = 0;
    absl::Status status;
    bool done = false;
    // Replies being copied into the output outside mutex_; the request may not be handed
    // back (and its output freed) until they finish.
    int copies_in_flight = 0;
    absl::Time deadline;
    std::vector<float>* output = nullptr;  // Pull into a vector only
    PulledRows* rows = nullptr;            // zero-copy Pull only
    // The value frames' encoding: of the pushed gradients, or of the pull replies.
    proto::ValueEncoding value_encoding = proto::VALUES_FP32;
    // Empty when the caller's keys were already sorted and unique: rows then land directly
    // in *output. Otherwise position i of the caller's keys has unique key unique_of[i], and
    // rows land in unique_rows before being scattered (or unique_of moves to *rows).
    std::vector<uint32_t> unique_of;
    std::vector<float> unique_rows;
  };

  // What a request sends: the caller's keys and gradients (empty for a PULL), and their owners
  // when the caller shares them (zero-copy Push); without an owner an array is copied.
  struct Arrays {
    absl::Span<const uint64_t> keys;
    absl::Span<const float> grads;
    std::shared_ptr<const void> key_owner;
    std::shared_ptr<const void> grad_owner;
  };
  // Where a PULL's rows go: one of the two, or neither for a PUSH.
  struct PullOutput {
    std::vector<float>* values = nullptr;
    PulledRows* rows = nullptr;
  };
  int64_t Submit(proto::Command command, const std::string& table, Arrays arrays, PullOutput output,
                 PullMode mode);
  // The frame of part [begin, end) of a request's unique keys, gradients or encoded gradients
  // (rows of `row_bytes` bytes at `data`): a view that holds a reference to `owner`, or a copy
  // if `owner` is null (the caller's span).
  static zmq::message_t SliceFrame(const std::shared_ptr<const void>& owner, const void* data,
                                   size_t begin, size_t end, size_t row_bytes);
  // A request that failed before it was sent.
  int64_t Reject(proto::Command command, const std::string& table, absl::Status status);
  // The calling thread's channel, connected on first use.
  Channel* ChannelOfThisThread();
  // Marks `request` finished with `status` (the first error wins). REQUIRES: mutex_ held.
  void FailLocked(Request& request, absl::Status status);
  // Marks part `part_index` of `request` answered, and the request done once all are.
  // REQUIRES: mutex_ held.
  void FinishPartLocked(Request& request, size_t part_index);
  // Waits up to `timeout` for replies on `channel` and handles one from each server whose reply
  // arrived (the caller loops until its request is done). With `sole_server` >= 0 (the waited
  // request needs that server's reply alone) it sleeps on that server's dealer only, ZeroMQ's
  // blocking receive being the cheapest wait for one socket; replies from other servers then
  // wait for the next call (at most `timeout`, for threads sharing the channel).
  // REQUIRES: channel.mutex held, mutex_ not held.
  void ReceiveReplies(Channel& channel, absl::Duration timeout, int sole_server);
  // The server rank of `request`'s one unanswered part, or -1 if none or several are.
  // REQUIRES: mutex_ held.
  static int SoleOutstandingServer(const Request& request);
  // Decodes a reply's frames from server `server_rank` and handles it (a reply that does not
  // decode fails the request it names).
  void HandleFrames(std::vector<zmq::message_t>&& frames, int server_rank);
  void HandleReply(Message&& reply, int server_rank);
  // Fails `request` for its deadline, naming the servers that did not answer.
  // REQUIRES: mutex_ held.
  void ExpireLocked(Request& request);
  // "server R (host:port, pid P)", named once at Start for the errors and logs that use it.
  const std::string& ServerName(int server_rank) const;

  zmq::context_t* const context_;
  const proto::ClusterView view_;
  const KVWorkerOptions options_;
  ShardMap shard_map_;
  std::map<std::string, int> dim_of_table_;
  std::map<std::string, proto::WireConfig> wire_of_table_;
  // Of tables with encoded keys: keys and key-frame bytes sent (KeyBytesPerKey).
  struct KeyFrameTally {
    std::atomic<uint64_t> keys{0};
    std::atomic<uint64_t> bytes{0};
  };
  std::map<std::string, KeyFrameTally> key_tally_of_table_;
  // Tables with a lossy push encoding.
  std::map<std::string, std::unique_ptr<ErrorFeedback>> feedback_of_table_;
  std::map<std::string, uint64_t> dense_size_of_table_;
  std::map<std::string, std::vector<uint64_t>> dense_keys_of_table_;  // block keys
  std::vector<proto::NodeInfo> servers_;                              // by rank
  std::vector<std::string> server_endpoints_;                         // by rank
  std::vector<std::string> server_names_;  // NodeName of each server, by rank; set by Start

  std::atomic<int64_t> next_id_{1};
  std::mutex channels_mutex_;
  std::vector<std::unique_ptr<Channel>> channels_;         // guarded by channels_mutex_
  std::map<std::thread::id, Channel*> channel_of_thread_;  // guarded by channels_mutex_
  mutable std::mutex mutex_;
  // Signalled when a request finishes, a copy into an output ends, or a channel is released.
  std::condition_variable request_done_;
  absl::flat_hash_map<int64_t, std::unique_ptr<Request>> requests_;  // guarded by mutex_
  std::map<int, std::string> dead_servers_;                          // guarded by mutex_
  std::string fenced_;  // guarded by mutex_; the reason once Fence was called
};

}  // namespace granary

#endif  // GRANARY_WORKER_KV_WORKER_H_
