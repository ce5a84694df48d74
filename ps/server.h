// ParameterServer: serves PULL and PUSH for the key ranges the shard map gives it, and carries
// out the scheduler's orders (checkpoint, shrink, delta export) on its TableCatalog.
//
// A ROUTER socket receives requests from every worker; a forwarding thread serves small
// requests itself (handing them over would cost more than serving them) and hands larger ones
// to `num_threads` handler threads, so requests from many workers are served concurrently.
// A peer connection with max_requests_per_peer requests on the handler threads gets an
// ERROR_REPLY naming that limit for the next one, at once.
// Every request passes DecodeMessage and then the server's own checks, CheckRequest
// (ps/request_check.h: known table, current shard-map version, at most max_request_keys keys
// and max_request_bytes bytes, checked before anything is allocated for it, value size = keys x
// dim, every key inside this server's ranges) and, for a PUSH, every gradient finite; a request
// that fails any check gets an ERROR_REPLY naming the sender and the reason (for a non-finite
// gradient: the table and the first offending key), is not applied at all, and the server keeps
// serving. The stats line counts refused requests.
// A message DecodeMessage rejects (wrong cluster id, unparsable header) gets only "rejected"
// and is logged once per peer address (see common/message.h).
//
// Fencing: the server accepts the PULL and PUSH of worker rank r only from an incarnation
// (header.sender_incarnation) at or above the lowest it accepts for r. Start sets that to each
// worker's incarnation in the view; FenceWorker (the scheduler's NODE_DEAD, wired by
// FollowScheduler) raises it past the dead incarnation, so a worker declared dead never
// changes the model again, even with requests that waited in its socket through a stall; a
// higher incarnation (a replacement: AcceptWorker, or its first request) raises it too, and is
// never refused whatever order its requests and the notice arrive in. A refused request gets
// an ERROR_REPLY naming the worker and incarnation, and is counted in the stats line.
//
// Adding a server command: first a value in `enum Command` of common/proto/message.proto, with
// its header fields (and a reply command if it has its own reply).
//   - A data-plane request from workers (like PULL, PUSH): let CheckRequest
//     (ps/request_check.h) accept the command and check its frames, and serve it in Handle (under
//     catalog_->LockForRequest()), which builds the reply. CheapToServeInline predicts any
//     request's cost from its table's cost per key; exclude the command there if that does not fit
//     it. Test it in tests/ps/server_test.cc, which talks to a server over a socket.
//   - An order of the scheduler (like CHECKPOINT, SHRINK, EXPORT_DELTA): add a case to the
//     switch in CarryOut, putting what it reports into *results, and to the switch in
//     SchedulerClient's receive loop (common/scheduler_client.cc) that queues orders for
//     FollowScheduler; the scheduler sends it (scheduler/). A whole-server operation belongs in
//     TableCatalog, which takes the cut lock exclusively; test it there
//     (tests/ps/table_catalog_test.cc) and end to end in tests/cluster/.
//
// Thread-compatible: Bind, Start, CarryOut and Stop must not run concurrently (one controlling
// thread calls them, e.g. FollowScheduler's). The server's own threads serve requests
// concurrently with CarryOut; the catalog's cut lock keeps each order a consistent cut.
#ifndef GRANARY_PS_SERVER_H_
#define GRANARY_PS_SERVER_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/curve_keys.h"
#include "common/handshake_monitor.h"
#include "common/message.h"
#include "common/proto/message.pb.h"
#include "common/scheduler_client.h"
#include "common/shard_map.h"
#include "common/socket_options.h"
#include "ps/request_check.h"
#include "ps/table_catalog.h"
#include "zmq.hpp"

namespace granary {

struct ServerOptions {
  std::string host = "127.0.0.1";
  // The cluster's CURVE keys (common/curve_keys.h); nullopt: workers connect unauthenticated.
  std::optional<CurveKeys> curve;
  // The bounds of the socket workers connect to (common/socket_options.h).
  SocketLimits socket_limits;
  int port = 0;  // 0 picks a free port
  // Non-empty: Bind() also serves on the socket file <ipc_dir>/server-<port>.sock, for workers
  // on this host (common/ipc_endpoint.h; the folder is made mode 0700). Empty (the default
  // here; the granary_server binary's --ipc puts it under --data_dir): TCP only.
  std::string ipc_dir;
  std::string cluster_id = "granary";
  int num_threads = 2;
  // Rows live in RocksDB under <data_dir>/server-<rank>.
  std::string data_dir = "granary-data";
  // RowCache budget of the whole server (see TableCatalogOptions).
  size_t cache_bytes = size_t{1} << 30;
  // If non-empty, the server starts from the checkpoint <restore_from>/server-<rank>;
  // otherwise from the one the cluster view names, if any (see ClusterView.restore_from).
  std::string restore_from;
  // false: validate and acknowledge requests without touching tables (pulls return zeros).
  // Only for measuring the transport, as ps-lite's benchmark does with its empty handler.
  bool apply_updates = true;
  // How often the server logs its load (requests, keys, cache hit rate, RocksDB writes), so
  // an overloaded shard is visible in the logs. Zero disables.
  absl::Duration stats_interval = absl::Seconds(60);
  // Fault injection for tests only: comma-separated order commands (CHECKPOINT, SHRINK,
  // EXPORT_DELTA), e.g. "SHRINK,CHECKPOINT". The server kills itself (SIGKILL) on receiving the
  // order that completes the sequence (its commands received in that order, others between
  // them ignored), before carrying it out. Empty (the default): no fault.
  std::string fault_on_order;
  // Limits of one PULL or PUSH to one table, checked before anything is allocated for it: at
  // most this many keys, and at most this many bytes of keys and values (keys x (8 + 4 x dim),
  // the request's for a PUSH, the request's keys and the reply's values for a PULL). A request
  // over either gets an ERROR_REPLY naming the limit and the table. The defaults sit far above
  // tests/bench/ps_bench's largest request (4M keys x 1 float, 48 MB). Raising
  // max_request_bytes past SocketLimits::max_message_bytes (common/socket_options.h) admits
  // nothing more: ZeroMQ drops a larger frame before the server sees it.
  size_t max_request_keys = size_t{1} << 24;
  size_t max_request_bytes = size_t{1} << 30;
  // Requests of one peer connection handed to the handler threads and not yet answered, at
  // most; one more is answered at once with an ERROR_REPLY naming the limit, so that one peer
  // cannot queue the server's memory full. A worker has a few requests in flight per server.
  int max_requests_per_peer = 1024;
};

class ParameterServer {
 public:
  ParameterServer(zmq::context_t* context, ServerOptions options);
  ~ParameterServer();  // Stops if running.
  ParameterServer(const ParameterServer&) = delete;
  ParameterServer& operator=(const ParameterServer&) = delete;

  // Binds the request socket to its TCP port and, with ipc_dir, to its socket file; returns
  // the bound port, or the error of BindTcp or BindIpc naming the endpoint or path.
  absl::StatusOr<int> Bind();

  // The ipc:// endpoint Bind() bound, to advertise (SchedulerClientOptions::ipc_endpoint);
  // empty without ipc_dir.
  const std::string& ipc_endpoint() const { return ipc_endpoint_; }

  // Opens (or restores) this server's store and the tables of view.config(), takes its ranges
  // from view.shard_map() (rank view.you().rank()) and starts the handler threads. Errors
  // name the store path and table. REQUIRES: Bind() succeeded.
  absl::Status Start(const proto::ClusterView& view);

  // Carries out an order of the scheduler and puts what it reports into *results:
  //   CHECKPOINT    every table (flushed, consistent across tables) into
  //                 <order.checkpoint_dir>/server-<rank>;
  //   SHRINK        day close: evicts stale rows (results->shrink, per table);
  //   EXPORT_DELTA  the rows changed since the last export (TableCatalog::ExportNextDelta) to
  //                 <order.export_dir>/server-<rank>.delta (results->delta).
  // Errors name the server and the path.
  absl::Status CarryOut(const proto::Header& order, proto::Header* results);

  // Stops the proxy and handler threads. Idempotent.
  void Stop();

  // The server's tables. REQUIRES: Start() succeeded.
  TableCatalog* catalog() const { return catalog_.get(); }

  // PUSHes refused since Start because a gradient was ±Inf or NaN (also in the stats line).
  uint64_t non_finite_pushes() const { return non_finite_pushes_.load(); }

  // Worker `rank` incarnation `incarnation` was declared dead: its requests, and those of any
  // older incarnation of the rank, are refused from now on. Thread-safe.
  void FenceWorker(int rank, uint64_t incarnation);
  // Worker `rank` now runs as `incarnation` (a replacement joined, NODE_JOINED): older
  // incarnations of the rank are refused. Thread-safe.
  void AcceptWorker(int rank, uint64_t incarnation);
  // PULLs and PUSHes of fenced worker incarnations refused since Start (also in the stats
  // line).
  uint64_t fenced_requests() const { return fenced_requests_.load(); }

 private:
  // Moves requests from the TCP frontend to the handler threads and replies back, until
  // Stop() signals the control socket.
  void ForwardLoop();
  void HandlerLoop();
  // True if `request` (decoded) is predicted, from the recent cost per key of its table, to
  // take so little time that serving it on the forwarding thread is cheaper than handing it to
  // a handler thread; true as well for a request that names no table, which is refused.
  bool CheapToServeInline(const Message& request) const;
  // Decodes `frames` from `peer` into *request. A message from outside the cluster (IsRejection)
  // is logged once per peer and gets the bare rejection in *reply. Returns DecodeMessage's status.
  absl::Status DecodeRequest(std::vector<zmq::message_t>&& frames, const std::string& peer,
                             Message* request, Message* reply);
  // Answers `request` (decoded) from `peer`, which has max_requests_per_peer requests in flight
  // already, with an ERROR_REPLY naming the limit.
  void RefuseOverPeerLimit(const proto::Header& request, const std::string& peer,
                           zmq::message_t& routing_id);
  // Decodes the request in `frames` (routing id and peer removed), serves it and sends the
  // reply to `routing_id` on `socket`.
  void Serve(std::vector<zmq::message_t>&& frames, const std::string& peer,
             zmq::message_t& routing_id, zmq::socket_t& socket);
  // Serve for a request DecodeRequest already decoded (`decoded` its status, `reply` the
  // rejection it filled in, if any).
  void ServeDecoded(const absl::Status& decoded, Message&& request, Message&& reply,
                    const std::string& peer, zmq::message_t& routing_id, zmq::socket_t& socket);
  // The value frame of a PULL's reply: `table`'s rows of `keys` (zeros if !apply_updates),
  // written straight into the frame ZeroMQ sends, or encoded in the table's light wire
  // (TableConfig.wire.pull_values). Sets *status to the table's error, if any.
  // The one place a reply's value frame is built.
  zmq::message_t PullReplyFrame(EmbeddingTable* table, absl::Span<const uint64_t> keys,
                                bool read_only, absl::Status* status);
  // Transport mode (!apply_updates): at least `count` zero floats that reply frames view
  // without a copy (FrameOfShared), so a pull's reply costs no allocation or fill per request.
  // Replaced by a larger array when a pull needs more; frames still sending keep the old one.
  std::shared_ptr<const std::vector<float>> ZerosOf(size_t count);
  // Validates and executes one request; returns the reply (an ERROR_REPLY on failure).
  Message Handle(Message&& request, const std::string& peer);
  // OK if a request of worker `header.sender_rank()` from incarnation
  // `header.sender_incarnation()` is accepted (see Fencing above); else FailedPrecondition
  // naming the worker and incarnation, counted. Raises the rank's lowest accepted incarnation
  // to a higher one it sees.
  absl::Status CheckNotFenced(const proto::Header& header, const std::string& sender);
  // Raises the lowest incarnation accepted of worker `rank` to `lowest` (never lowers it).
  void RaiseLowestIncarnation(int rank, uint64_t lowest);
  Message ErrorReply(const proto::Header& request, const std::string& error) const;

  zmq::context_t* const context_;
  const ServerOptions options_;
  const std::string backend_endpoint_;
  const std::string control_endpoint_;
  zmq::socket_t frontend_;
  std::string ipc_endpoint_;  // set by Bind()
  // Logs peers frontend_ drops in the CURVE handshake. After frontend_: destroyed before it.
  HandshakeMonitor handshake_monitor_;
  // Messages from peers outside the cluster (see common/message.h): logged once per peer.
  RejectionLog rejections_;
  int rank_ = -1;
  size_t fault_orders_matched_ = 0;  // of options_.fault_on_order; orders come one at a time
  std::vector<KeyRange> ranges_;     // the storage bounds_.ranges views
  // What CheckRequest (ps/request_check.h) accepts: this server's rank, shard-map version,
  // ranges_ and request limits. Set by Start.
  RequestBounds bounds_;
  std::unique_ptr<TableCatalog> catalog_;
  // Per table: the smoothed time Handle took per key, in ns. Filled at Start; only the
  // values change afterwards.
  absl::node_hash_map<std::string, std::atomic<double>> nanos_per_key_;
  // Logs and resets the load counters once stats_interval has passed, or now if
  // `final_report` (at Stop). Any thread.
  void MaybeLogLoad(bool final_report);

  std::atomic<bool> stop_{false};
  // Load since the last stats line.
  std::atomic<uint64_t> pulls_{0}, pushes_{0}, pulled_keys_{0}, pushed_keys_{0}, errors_{0};
  // PUSHes refused for a non-finite gradient since Start (also counted in errors_).
  std::atomic<uint64_t> non_finite_pushes_{0};
  // Per worker rank, the lowest incarnation whose requests are accepted. Read by every request
  // (shared), written only when a worker dies or a newer incarnation appears.
  std::shared_mutex fence_mutex_;
  absl::flat_hash_map<int, uint64_t> lowest_incarnation_;  // guarded by fence_mutex_
  std::atomic<uint64_t> fenced_requests_{0};  // refused since Start (also counted in errors_)
  std::mutex stats_mutex_;
  absl::Time last_stats_ = absl::Now();
  std::mutex zeros_mutex_;
  std::shared_ptr<const std::vector<float>> zeros_;  // guarded by zeros_mutex_; see ZerosOf
  std::thread proxy_thread_;
  std::vector<std::thread> handler_threads_;
};

// Carries out the scheduler's orders to `server` (ParameterServer::CarryOut) and answers
// them, until the scheduler orders shutdown (OK), is lost (Unavailable), fenced this server
// (FailedPrecondition with the scheduler's reason) or *stop is set (OK).
// Sets `client`'s NODE_DEAD callback to fence dead workers (ParameterServer::FenceWorker) and
// its NODE_JOINED callback to accept their replacements (AcceptWorker), so `server` must outlive
// `client`.
absl::Status FollowScheduler(SchedulerClient& client, ParameterServer& server,
                             const std::atomic<bool>* stop = nullptr);

}  // namespace granary

#endif  // GRANARY_PS_SERVER_H_
