#include "ps/server.h"

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/ipc_endpoint.h"
#include "common/socket_options.h"
#include "common/socket_poller.h"
#include "common/wire_codec.h"
#include "glog/logging.h"
#include "ps/request_check.h"

namespace granary {
namespace {

// How often an idle handler thread wakes to check for Stop(); bounds shutdown latency.
constexpr std::chrono::milliseconds kHandlerStopCheck(200);

// A request predicted to take at most this long is served on the forwarding thread itself.
// Handing a request to a handler thread and its reply back costs two thread wake-ups, more
// than serving a small one: for 1,000 keys x 1 float, serving inline cut context switches per
// request from 12 to 8.6 and CPU per request by a quarter (tests/bench/ps_bench). Longer
// requests go to the handler threads, where they run in parallel; the bound also bounds how
// long an inline request holds up the forwarding of others.
constexpr absl::Duration kMaxInlineServeTime = absl::Microseconds(200);
// The cost per key assumed for a table before any request to it was timed: about that of an
// Adagrad push at dim 16 (tests/bench/table_bench).
constexpr double kInitialNanosPerKey = 200;
// Weight of the newest request in the smoothed cost per key.
constexpr double kCostSmoothing = 1.0 / 8;

// A PUSH's gradients as floats: a view of its value frame on the fp32 wire, else decoded from
// the table's push encoding (common/wire_codec.h). CheckRequest checked the frame's size; a
// frame that still does not decode leaves *status an error naming the sender and the table.
class WireGradients {
 public:
  WireGradients(const Message& request, const EmbeddingTable& table, const std::string& sender,
                absl::Status* status) {
    const proto::ValueEncoding encoding = table.config().wire().push_values();
    if (encoding == proto::VALUES_FP32) {
      frame_.emplace(request.values);
      span_ = frame_->span();
      return;
    }
    const size_t rows = request.keys.size() / sizeof(uint64_t);
    decoded_.resize(rows * table.dim());
    const absl::Status decoded =
        DecodeValues(encoding,
                     absl::MakeConstSpan(static_cast<const uint8_t*>(request.values.data()),
                                         request.values.size()),
                     rows, table.dim(), decoded_.data());
    if (!decoded.ok()) {
      *status = absl::InvalidArgumentError(absl::StrCat("PUSH to table '", table.name(), "' from ",
                                                        sender, ": ", decoded.message()));
      decoded_.clear();
    }
    span_ = decoded_;
  }
  WireGradients(const WireGradients&) = delete;
  WireGradients& operator=(const WireGradients&) = delete;

  absl::Span<const float> span() const { return span_; }
  size_t size() const { return span_.size(); }

 private:
  std::optional<FrameArray<float>> frame_;
  std::vector<float> decoded_;
  absl::Span<const float> span_;
};

std::string InprocEndpoint(const char* what, const void* owner) {
  return absl::StrCat("inproc://server-", what, "-", reinterpret_cast<uintptr_t>(owner));
}

}  // namespace

ParameterServer::ParameterServer(zmq::context_t* context, ServerOptions options)
    : context_(context),
      options_(std::move(options)),
      backend_endpoint_(InprocEndpoint("backend", this)),
      control_endpoint_(InprocEndpoint("control", this)),
      frontend_(*context, zmq::socket_type::router),
      handshake_monitor_(context, frontend_, "server", options_.curve),
      rejections_("server") {
  ConfigureSocket(frontend_, options_.socket_limits);
  ConfigureCurveServer(frontend_, options_.curve);
}

ParameterServer::~ParameterServer() { Stop(); }

absl::StatusOr<int> ParameterServer::Bind() {
  absl::StatusOr<int> port = BindTcp(frontend_, options_.host, options_.port);
  if (!port.ok() || options_.ipc_dir.empty()) return port;
  absl::StatusOr<std::string> ipc =
      BindIpc(frontend_, options_.ipc_dir, absl::StrCat("server-", *port, ".sock"));
  if (!ipc.ok()) return ipc.status();
  ipc_endpoint_ = *std::move(ipc);
  LOG(INFO) << "server on port " << *port << " also serves workers of its host at "
            << ipc_endpoint_;
  return port;
}

absl::Status ParameterServer::Start(const proto::ClusterView& view) {
  absl::StatusOr<ShardMap> shard_map = ShardMap::FromProto(view.shard_map());
  if (!shard_map.ok()) return shard_map.status();
  rank_ = view.you().rank();
  ranges_ = shard_map->RangesOf(rank_);
  bounds_.server_rank = rank_;
  bounds_.shard_map_version = shard_map->version();
  bounds_.ranges = ranges_;
  bounds_.max_request_keys = options_.max_request_keys;
  bounds_.max_request_bytes = options_.max_request_bytes;
  TableCatalogOptions catalog_options;
  catalog_options.path = absl::StrCat(options_.data_dir, "/server-", rank_);
  catalog_options.cache_bytes = options_.cache_bytes;
  const std::string& restore_from =
      options_.restore_from.empty() ? view.restore_from() : options_.restore_from;
  if (!restore_from.empty()) {
    catalog_options.restore_from = absl::StrCat(restore_from, "/server-", rank_);
  } else if (view.start_empty()) {
    // Rows a crashed attempt left behind were never checkpointed: they must not count.
    std::error_code error;
    if (std::filesystem::remove_all(catalog_options.path, error) > 0) {
      LOG(INFO) << "server " << rank_ << ": run starts without a checkpoint; removed "
                << catalog_options.path;
    }
    if (error) {
      return absl::UnavailableError(absl::StrCat("server ", rank_, ": cannot empty ",
                                                 catalog_options.path, ": ", error.message()));
    }
  }
  absl::StatusOr<std::unique_ptr<TableCatalog>> catalog =
      TableCatalog::Open(view.config(), catalog_options);
  if (!catalog.ok()) {
    return absl::Status(catalog.status().code(),
                        absl::StrCat("server ", rank_, ": ", catalog.status().message()));
  }
  catalog_ = *std::move(catalog);
  if (view.day() > 0) catalog_->SetDay(view.day());
  for (const auto& table : catalog_->tables()) nanos_per_key_[table->name()] = kInitialNanosPerKey;
  for (const proto::NodeInfo& node : view.nodes()) {
    if (node.role() == proto::WORKER) RaiseLowestIncarnation(node.rank(), node.incarnation());
  }
  proxy_thread_ = std::thread([this] { ForwardLoop(); });
  for (int i = 0; i < options_.num_threads; ++i) {
    handler_threads_.emplace_back([this] { HandlerLoop(); });
  }
  LOG(INFO) << "server " << rank_ << " serving " << catalog_->tables().size() << " tables from "
            << catalog_->path() << ", " << ranges_.size() << " key ranges, with "
            << options_.num_threads << " handler threads";
  return absl::OkStatus();
}

void ParameterServer::Stop() {
  if (stop_.exchange(true)) return;
  if (proxy_thread_.joinable()) {
    zmq::socket_t control(*context_, zmq::socket_type::pair);
    control.set(zmq::sockopt::linger, 0);
    control.connect(control_endpoint_);
    control.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
    proxy_thread_.join();
  }
  for (std::thread& thread : handler_threads_) thread.join();
  handler_threads_.clear();
  MaybeLogLoad(/*final_report=*/true);
}

void ParameterServer::ForwardLoop() {
  zmq::socket_t backend(*context_, zmq::socket_type::dealer);
  ConfigureSocket(backend);
  backend.bind(backend_endpoint_);
  zmq::socket_t control(*context_, zmq::socket_type::pair);
  control.set(zmq::sockopt::linger, 0);
  control.bind(control_endpoint_);
  enum : size_t { kFrontend, kBackend, kControl };
  SocketPoller poller({&frontend_, &backend, &control});
  std::vector<zmq::message_t> frames;
  // Per peer connection (routing id): requests handed to the handlers and not yet answered.
  absl::flat_hash_map<std::string, int> in_flight;
  while (true) {
    poller.Wait(std::chrono::milliseconds(-1));
    if (poller.MayHaveInput(kControl) && poller.TryReceive(kControl, &frames)) return;  // Stop()
    // Requests: [routing id][frames...] -> [routing id][peer address][frames...]. The peer's
    // TCP address is only known on the frontend, and errors must name it.
    while (poller.MayHaveInput(kFrontend) && poller.TryReceive(kFrontend, &frames)) {
      std::string peer = frames.size() > 1 ? PeerAddress(frames[1]) : "unknown peer";
      zmq::message_t routing_id = std::move(frames[0]);
      frames.erase(frames.begin());
      // Decoded here, once: a request served inline is not parsed again.
      Message request, reply;
      const absl::Status decoded = DecodeRequest(std::move(frames), peer, &request, &reply);
      if (!decoded.ok() || CheapToServeInline(request)) {
        ServeDecoded(decoded, std::move(request), std::move(reply), peer, routing_id, frontend_);
        poller.Sent(kFrontend);
        continue;
      }
      int& requests = in_flight[routing_id.to_string()];
      if (requests >= options_.max_requests_per_peer) {
        RefuseOverPeerLimit(request.header, peer, routing_id);
        poller.Sent(kFrontend);
        continue;
      }
      ++requests;
      // The frames as received, for the handler to decode: DecodeMessage left the header frame
      // in place and moved the key and value frames into `request`.
      frames.resize(1);
      frames.insert(frames.begin(), zmq::message_t(peer));
      frames.insert(frames.begin(), std::move(routing_id));
      frames.push_back(std::move(request.keys));
      frames.push_back(std::move(request.values));
      zmq::send_multipart(backend, frames);
      poller.Sent(kBackend);
    }
    // Replies go back unchanged: the routing id leads them to their worker.
    while (poller.MayHaveInput(kBackend) && poller.TryReceive(kBackend, &frames)) {
      auto requests = in_flight.find(frames[0].to_string());
      if (requests != in_flight.end() && --requests->second <= 0) in_flight.erase(requests);
      zmq::send_multipart(frontend_, frames);
      poller.Sent(kFrontend);
    }
  }
}

void ParameterServer::HandlerLoop() {
  zmq::socket_t socket(*context_, zmq::socket_type::dealer);
  ConfigureSocket(socket);
  socket.connect(backend_endpoint_);
  while (!stop_) {
    MaybeLogLoad(/*final_report=*/false);
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (PollSockets(&item, 1, kHandlerStopCheck) <= 0) continue;
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket, std::back_inserter(frames))) continue;
    if (frames.size() < 3) continue;  // routing id and peer alone: nothing to answer
    zmq::message_t routing_id = std::move(frames[0]);
    std::string peer = frames[1].to_string();
    frames.erase(frames.begin(), frames.begin() + 2);
    Serve(std::move(frames), peer, routing_id, socket);
  }
}

bool ParameterServer::CheapToServeInline(const Message& request) const {
  auto cost = nanos_per_key_.find(request.header.table());
  // Not a table's request: it is refused, which is cheap.
  if (cost == nanos_per_key_.end() || !IsDataCommand(request.header.command())) return true;
  const double keys = static_cast<double>(request.keys.size() / sizeof(uint64_t));
  return keys * cost->second.load(std::memory_order_relaxed) <=
         absl::ToDoubleNanoseconds(kMaxInlineServeTime);
}

absl::Status ParameterServer::DecodeRequest(std::vector<zmq::message_t>&& frames,
                                            const std::string& peer, Message* request,
                                            Message* reply) {
  absl::Status decoded = DecodeMessage(std::move(frames), options_.cluster_id, peer, request);
  if (IsRejection(decoded)) {
    rejections_.Log(peer, decoded);
    reply->header = MakeRejectionHeader(request->header);
  }
  return decoded;
}

void ParameterServer::Serve(std::vector<zmq::message_t>&& frames, const std::string& peer,
                            zmq::message_t& routing_id, zmq::socket_t& socket) {
  Message request, reply;
  const absl::Status decoded = DecodeRequest(std::move(frames), peer, &request, &reply);
  ServeDecoded(decoded, std::move(request), std::move(reply), peer, routing_id, socket);
}

void ParameterServer::ServeDecoded(const absl::Status& decoded, Message&& request, Message&& reply,
                                   const std::string& peer, zmq::message_t& routing_id,
                                   zmq::socket_t& socket) {
  if (decoded.ok()) {
    reply = Handle(std::move(request), peer);
  } else if (!IsRejection(decoded)) {  // a rejection's reply is filled in already
    LOG(ERROR) << "server " << rank_ << " rejected a message: " << decoded.message();
    reply = ErrorReply(request.header, absl::StrCat("server ", rank_, ": ", decoded.message()));
  }
  absl::Status sent = SendMessage(socket, std::move(reply), &routing_id);
  if (!sent.ok()) LOG(ERROR) << "server " << rank_ << ": reply to " << peer << " failed";
}

void ParameterServer::RefuseOverPeerLimit(const proto::Header& request, const std::string& peer,
                                          zmq::message_t& routing_id) {
  ++errors_;
  const std::string error =
      absl::StrCat("server ", rank_, ": ", proto::Command_Name(request.command()), " to table '",
                   request.table(), "' from ", DescribeSender(request, peer),
                   " refused: ", options_.max_requests_per_peer,
                   " requests of this peer are in flight already (--max_requests_per_peer)");
  LOG_EVERY_N(ERROR, 1000) << error;
  absl::Status sent = SendMessage(frontend_, ErrorReply(request, error), &routing_id);
  if (!sent.ok()) LOG(ERROR) << "server " << rank_ << ": reply to " << peer << " failed";
}

void ParameterServer::MaybeLogLoad(bool final_report) {
  if (options_.stats_interval <= absl::ZeroDuration() || catalog_ == nullptr) return;
  std::unique_lock<std::mutex> lock(stats_mutex_, std::defer_lock);
  if (final_report) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return;
  }
  absl::Time now = absl::Now();
  if (!final_report && now - last_stats_ < options_.stats_interval) return;
  double seconds = absl::ToDoubleSeconds(now - last_stats_);
  last_stats_ = now;
  std::string tables;
  for (const auto& table : catalog_->tables()) {
    CacheStats stats = table->stats();
    uint64_t lookups = stats.hits + stats.misses;
    absl::StrAppendFormat(&tables,
                          "; '%s' %d rows cached, hit rate since start %.3f, %d rows written, %d "
                          "non-finite updates refused since start",
                          table->name(), stats.cached_rows,
                          lookups == 0 ? 1.0 : static_cast<double>(stats.hits) / lookups,
                          stats.rows_written, stats.updates_refused);
  }
  LOG(INFO) << absl::StrFormat(
      "server %d load over %.1f s: %d pulls (%d keys), %d pushes (%d keys), %d errors; %d "
      "non-finite pushes refused since start; %d requests of fenced workers refused since "
      "start; RocksDB wrote %d MB%s",
      rank_, seconds, pulls_.exchange(0), pulled_keys_.exchange(0), pushes_.exchange(0),
      pushed_keys_.exchange(0), errors_.exchange(0), non_finite_pushes_.load(),
      fenced_requests_.load(), catalog_->RocksDbBytesWritten() >> 20, tables);
}

absl::Status ParameterServer::CarryOut(const proto::Header& order, proto::Header* results) {
  if (!options_.fault_on_order.empty()) {
    const std::vector<std::string> sequence = absl::StrSplit(options_.fault_on_order, ',');
    if (sequence[fault_orders_matched_] == proto::Command_Name(order.command()) &&
        ++fault_orders_matched_ == sequence.size()) {
      LOG(ERROR) << "fault injection (--fault_on_order=" << options_.fault_on_order
                 << "): killing server " << rank_;
      google::FlushLogFiles(google::GLOG_INFO);
      raise(SIGKILL);
    }
  }
  const absl::Time start = absl::Now();
  std::string what;
  absl::Status status;
  switch (order.command()) {
    case proto::CHECKPOINT:
      what = absl::StrCat("checkpoint ", order.checkpoint_dir(), "/server-", rank_);
      status = order.checkpoint_dir().empty()
                   ? absl::InvalidArgumentError("no checkpoint_dir")
                   : catalog_->Checkpoint(absl::StrCat(order.checkpoint_dir(), "/server-", rank_));
      break;
    case proto::SHRINK: {
      what = absl::StrCat("shrink of day ", catalog_->day());
      absl::StatusOr<std::vector<ShrinkReport>> reports = catalog_->Shrink();
      status = reports.status();
      for (const ShrinkReport& report : reports.value_or(std::vector<ShrinkReport>{})) {
        proto::TableShrink* shrink = results->add_shrink();
        shrink->set_table(report.table);
        shrink->set_kept(report.kept);
        shrink->set_dropped(report.dropped);
        shrink->set_already_shrunk(report.already_shrunk);
      }
      break;
    }
    case proto::EXPORT_DELTA: {
      const std::string path = absl::StrCat(order.export_dir(), "/server-", rank_, ".delta");
      what = absl::StrCat("delta export to ", path);
      std::error_code error;
      std::filesystem::create_directories(order.export_dir(), error);
      if (order.export_dir().empty() || error) {
        status = absl::UnavailableError(
            absl::StrCat("cannot create '", order.export_dir(), "': ", error.message()));
        break;
      }
      absl::StatusOr<DeltaSummary> summary = catalog_->ExportNextDelta(path, rank_);
      status = summary.status();
      if (summary.ok()) {
        proto::DeltaExport* delta = results->mutable_delta();
        delta->set_path(path);
        delta->set_since_version(summary->since_version);
        delta->set_until_version(summary->until_version);
        delta->set_rows(summary->rows);
        delta->set_tombstones(summary->tombstones);
      }
      break;
    }
    default:
      status = absl::InvalidArgumentError(
          absl::StrCat("unknown order ", proto::Command_Name(order.command())));
  }
  if (!status.ok()) {
    LOG(ERROR) << "server " << rank_ << ": " << what << ": " << status.message();
    return absl::Status(status.code(),
                        absl::StrCat("server ", rank_, ": ", what, ": ", status.message()));
  }
  LOG(INFO) << "server " << rank_ << ": " << what << " done in "
            << absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1)));
  return absl::OkStatus();
}

Message ParameterServer::ErrorReply(const proto::Header& request, const std::string& error) const {
  Message reply;
  reply.header =
      MakeReplyHeader(request, proto::ERROR_REPLY, options_.cluster_id, proto::SERVER, rank_);
  reply.header.set_error(error);
  return reply;
}

void ParameterServer::RaiseLowestIncarnation(int rank, uint64_t lowest) {
  std::unique_lock<std::shared_mutex> lock(fence_mutex_);
  uint64_t& current = lowest_incarnation_[rank];
  current = std::max(current, lowest);
}

void ParameterServer::FenceWorker(int rank, uint64_t incarnation) {
  LOG(WARNING) << "server " << rank_ << ": worker " << rank << " incarnation " << incarnation
               << " was declared dead by the scheduler: its requests are refused from now on";
  RaiseLowestIncarnation(rank, incarnation + 1);
}

void ParameterServer::AcceptWorker(int rank, uint64_t incarnation) {
  RaiseLowestIncarnation(rank, incarnation);
}

absl::Status ParameterServer::CheckNotFenced(const proto::Header& header,
                                             const std::string& sender) {
  if (header.sender_role() != proto::WORKER) return absl::OkStatus();
  const int rank = header.sender_rank();
  const uint64_t incarnation = header.sender_incarnation();
  uint64_t lowest = 0;
  {
    std::shared_lock<std::shared_mutex> lock(fence_mutex_);
    auto it = lowest_incarnation_.find(rank);
    if (it != lowest_incarnation_.end()) lowest = it->second;
  }
  if (incarnation > lowest) RaiseLowestIncarnation(rank, incarnation);  // a replacement
  if (incarnation >= lowest) return absl::OkStatus();
  ++fenced_requests_;
  return absl::FailedPreconditionError(absl::StrCat(
      proto::Command_Name(header.command()), " to table '", header.table(), "' from ", sender,
      ": worker ", rank, " incarnation ", incarnation,
      " was declared dead by the scheduler (fenced); its requests are refused (this server "
      "accepts worker ",
      rank, " from incarnation ", lowest, " on)"));
}

zmq::message_t ParameterServer::PullReplyFrame(EmbeddingTable* table,
                                               absl::Span<const uint64_t> keys, bool read_only,
                                               absl::Status* status) {
  const size_t count = keys.size() * static_cast<size_t>(table->dim());
  auto fill = [&](float* values) {
    if (options_.apply_updates) {
      auto cut = catalog_->LockForRequest();
      *status = table->Pull(keys, values, read_only);  // writes every value
    } else {
      std::fill(values, values + count, 0.0f);  // transport mode answers zeros
    }
  };
  const proto::ValueEncoding encoding = table->config().wire().pull_values();
  if (!options_.apply_updates && encoding == proto::VALUES_FP32) {
    if (count == 0) return zmq::message_t();
    std::shared_ptr<const std::vector<float>> zeros = ZerosOf(count);
    const float* data = zeros->data();
    return FrameOfShared(std::move(zeros), data, count * sizeof(float));
  }
  if (encoding != proto::VALUES_FP32) {
    // A light wire (common/wire_codec.h): the rows are encoded into a frame of their own.
    std::vector<float> values(count);
    fill(values.data());
    return FrameFromVector(EncodeValues(encoding, values, table->dim()));
  }
  zmq::message_t frame(count * sizeof(float));
  // A large frame is heap memory, aligned for floats; ZeroMQ keeps a small one inside the
  // message itself, maybe misaligned: that one is filled through a copy.
  const bool aligned = reinterpret_cast<uintptr_t>(frame.data()) % alignof(float) == 0;
  std::vector<float> unaligned(aligned ? 0 : count);
  float* values = aligned ? static_cast<float*>(frame.data()) : unaligned.data();
  fill(values);
  if (!aligned && count > 0) std::memcpy(frame.data(), values, count * sizeof(float));
  return frame;
}

std::shared_ptr<const std::vector<float>> ParameterServer::ZerosOf(size_t count) {
  std::lock_guard<std::mutex> lock(zeros_mutex_);
  if (zeros_ == nullptr || zeros_->size() < count) {
    zeros_ = std::make_shared<const std::vector<float>>(count, 0.0f);
  }
  return zeros_;
}

Message ParameterServer::Handle(Message&& request, const std::string& peer) {
  const absl::Time start = absl::Now();
  std::string sender = DescribeSender(request.header, peer);
  EmbeddingTable* table = nullptr;
  absl::Status status = CheckNotFenced(request.header, sender);
  if (status.ok()) {
    status = CheckRequest(&request, sender, bounds_, [&](const std::string& name) {
      table = catalog_->Find(name);
      if (table == nullptr) return TableShape();
      const proto::WireConfig& wire = table->config().wire();
      return TableShape(table->dim(), wire.pull_values(), wire.push_values(), wire.keys());
    });
  }
  FrameArray<uint64_t> keys(request.keys);
  Message reply;
  if (status.ok() && request.header.command() == proto::PULL) {
    ++pulls_;
    pulled_keys_ += keys.size();
    reply.values = PullReplyFrame(table, keys.span(), request.header.read_only(), &status);
    reply.header = MakeReplyHeader(request.header, proto::PULL_REPLY, options_.cluster_id,
                                   proto::SERVER, rank_);
    if (table->config().wire().pull_values() != proto::VALUES_FP32) {
      reply.header.set_value_encoding(table->config().wire().pull_values());
    }
  } else if (status.ok()) {
    ++pushes_;
    pushed_keys_ += keys.size();
    const WireGradients grads(request, *table, sender, &status);
    // Checked whole before any of it is applied: a poisoned push changes nothing.
    const size_t bad = FirstNonFinite(grads.span());
    if (!status.ok()) {
      // Not decoded: nothing to apply.
    } else if (bad < grads.size()) {
      ++non_finite_pushes_;
      const size_t dim = table->dim();
      status = absl::InvalidArgumentError(absl::StrFormat(
          "PUSH to table '%s' from %s carries a non-finite gradient (%g) for key %#018x "
          "(dimension %d); nothing of it was applied",
          table->name(), sender, grads.span()[bad], keys.span()[bad / dim], bad % dim));
    } else if (options_.apply_updates) {
      auto cut = catalog_->LockForRequest();
      status = table->Push(keys.span(), grads.span().data());
    }
    reply.header = MakeReplyHeader(request.header, proto::PUSH_REPLY, options_.cluster_id,
                                   proto::SERVER, rank_);
  }
  if (!status.ok()) {
    ++errors_;
    LOG(ERROR) << "server " << rank_ << ": " << status.message();
    return ErrorReply(request.header, absl::StrCat("server ", rank_, ": ", status.message()));
  }
  if (keys.size() > 0) {
    // Lost updates between racing handlers only make the estimate a little staler.
    std::atomic<double>& cost = nanos_per_key_.find(table->name())->second;
    const double nanos = absl::ToDoubleNanoseconds(absl::Now() - start) / keys.size();
    cost.store(cost.load(std::memory_order_relaxed) * (1 - kCostSmoothing) + nanos * kCostSmoothing,
               std::memory_order_relaxed);
  }
  return reply;
}

absl::Status FollowScheduler(SchedulerClient& client, ParameterServer& server,
                             const std::atomic<bool>* stop) {
  // Short waits, so that *stop is seen soon; an idle server still sleeps on its condition.
  constexpr absl::Duration kOrderWait = absl::Milliseconds(200);
  client.SetNodeDeadCallback([&server](const proto::NodeInfo& node) {
    if (node.role() == proto::WORKER) server.FenceWorker(node.rank(), node.incarnation());
  });
  client.SetNodeJoinedCallback([&server](const proto::NodeInfo& node) {
    if (node.role() == proto::WORKER) server.AcceptWorker(node.rank(), node.incarnation());
  });
  while (stop == nullptr || !stop->load()) {
    absl::StatusOr<proto::Header> order = client.WaitForOrder(kOrderWait);
    if (absl::IsAborted(order.status())) {  // shutdown ordered
      std::string fenced = client.fenced_reason();
      if (fenced.empty()) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat("fenced by the scheduler: ", fenced));
    }
    if (absl::IsDeadlineExceeded(order.status())) continue;
    if (!order.ok()) return order.status();
    proto::Header results;
    absl::Status outcome = server.CarryOut(*order, &results);
    client.AnswerOrder(*order, outcome, results);
  }
  return absl::OkStatus();
}

}  // namespace granary
