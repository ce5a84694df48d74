#include "worker/kv_worker.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "common/ipc_endpoint.h"
#include "common/node_name.h"
#include "common/socket_options.h"
#include "common/wire_codec.h"
#include "glog/logging.h"

namespace granary {
namespace {

// Longest a waiter holds a channel in one poll. It bounds how late a waiter sees a request
// failed by MarkServerDead, and how long a thread sharing the channel waits to send on it.
constexpr absl::Duration kReceiveSlice = absl::Milliseconds(10);

// Runs over every key of every request, so it is written to vectorize: no early exit inside a
// block of kSortCheckBlock keys (an early-exit loop took ~3 ms for 4M keys; this, under 1 ms).
bool IsSortedUnique(absl::Span<const uint64_t> keys) {
  constexpr size_t kSortCheckBlock = 1024;
  const uint64_t* key = keys.data();  // not keys[i]: Span's checked operator[] stops GCC
  for (size_t begin = 1; begin < keys.size(); begin += kSortCheckBlock) {
    const size_t end = std::min(keys.size(), begin + kSortCheckBlock);
    size_t out_of_order = 0;  // a count, not a bool: GCC vectorizes the sum, not the "or"
    for (size_t i = begin; i < end; ++i) out_of_order += key[i - 1] >= key[i];
    if (out_of_order > 0) return false;
  }
  return true;
}

std::string DescribeRequest(proto::Command command, int64_t id, const std::string& table) {
  return absl::StrCat(command == proto::PULL ? "pull" : "push", " request ", id, " (table '", table,
                      "')");
}

}  // namespace

KVWorker::KVWorker(zmq::context_t* context, const proto::ClusterView& view, KVWorkerOptions options)
    : context_(context), view_(view), options_(std::move(options)) {
  for (const proto::TableConfig& table : view_.config().tables()) {
    dim_of_table_[table.name()] = static_cast<int>(table.dim());
    wire_of_table_[table.name()] = table.wire();
    if (table.wire().keys() != proto::KEYS_RAW) key_tally_of_table_[table.name()];
    if (table.wire().push_values() != proto::VALUES_FP32) {
      feedback_of_table_[table.name()] = std::make_unique<ErrorFeedback>(
          table.wire().push_values(), table.dim(), options_.max_residual_keys);
    }
    if (table.dense_size() == 0) continue;
    dense_size_of_table_[table.name()] = table.dense_size();
    std::vector<uint64_t>& keys = dense_keys_of_table_[table.name()];
    for (uint64_t block = 0; block * table.dim() < table.dense_size(); ++block) {
      keys.push_back(DenseBlockKey(table.name(), block));
    }
  }
}

KVWorker::~KVWorker() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, request] : requests_) {
    FailLocked(*request, absl::AbortedError(
                             absl::StrCat(DescribeRequest(request->command, id, request->table),
                                          ": worker shutting down")));
  }
}

absl::Status KVWorker::Start() {
  absl::StatusOr<ShardMap> shard_map = ShardMap::FromProto(view_.shard_map());
  if (!shard_map.ok()) return shard_map.status();
  shard_map_ = *std::move(shard_map);
  servers_.resize(shard_map_.num_servers());
  std::vector<bool> seen(servers_.size(), false);
  for (const proto::NodeInfo& node : view_.nodes()) {
    if (node.role() != proto::SERVER) continue;
    if (node.rank() < 0 || node.rank() >= static_cast<int>(servers_.size()) || node.port() <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster view has a bad server entry: ", NodeName(node)));
    }
    servers_[node.rank()] = node;
    seen[node.rank()] = true;
  }
  for (size_t rank = 0; rank < seen.size(); ++rank) {
    if (!seen[rank]) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard map names server ", rank, " but the view has no such server"));
    }
  }
  const std::string local_host_id = options_.use_ipc ? LocalHostId() : "";
  server_endpoints_.clear();
  server_names_.clear();
  for (const proto::NodeInfo& server : servers_) {
    server_names_.push_back(NodeName(server));
    server_endpoints_.push_back(ServerEndpoint(server, local_host_id));
    LOG(INFO) << "worker connects to " << NodeName(server) << " at " << server_endpoints_.back();
  }
  ChannelOfThisThread();  // connecting takes a while: start before the first request
  return absl::OkStatus();
}

KVWorker::Channel* KVWorker::ChannelOfThisThread() {
  std::lock_guard<std::mutex> lock(channels_mutex_);
  auto [it, added] = channel_of_thread_.try_emplace(std::this_thread::get_id(), nullptr);
  if (!added) return it->second;
  if (static_cast<int>(channels_.size()) >= std::max(1, options_.max_channels)) {
    it->second = channels_[channel_of_thread_.size() % channels_.size()].get();
    return it->second;
  }
  auto channel = std::make_unique<Channel>();
  for (const std::string& endpoint : server_endpoints_) {
    channel->dealers.emplace_back(*context_, zmq::socket_type::dealer);
    ConfigureSocket(channel->dealers.back(), options_.socket_limits);
    ConfigureCurveClient(channel->dealers.back(), options_.curve);
    channel->dealers.back().connect(endpoint);
  }
  std::vector<zmq::socket_t*> dealers;
  for (zmq::socket_t& dealer : channel->dealers) dealers.push_back(&dealer);
  channel->poller = std::make_unique<SocketPoller>(std::move(dealers));
  it->second = channel.get();
  channels_.push_back(std::move(channel));
  return it->second;
}

int KVWorker::DimOf(const std::string& table) const {
  auto it = dim_of_table_.find(table);
  return it == dim_of_table_.end() ? 0 : it->second;
}

size_t KVWorker::PullRowBytes(const std::string& table) const {
  auto wire = wire_of_table_.find(table);
  return wire == wire_of_table_.end() ? 0
                                      : EncodedRowBytes(wire->second.pull_values(), DimOf(table));
}

size_t KVWorker::PushRowBytes(const std::string& table) const {
  auto wire = wire_of_table_.find(table);
  return wire == wire_of_table_.end() ? 0
                                      : EncodedRowBytes(wire->second.push_values(), DimOf(table));
}

double KVWorker::KeyBytesPerKey(const std::string& table) const {
  if (wire_of_table_.count(table) == 0) return 0;
  auto tally = key_tally_of_table_.find(table);
  if (tally == key_tally_of_table_.end()) return sizeof(uint64_t);
  const uint64_t keys = tally->second.keys.load(std::memory_order_relaxed);
  if (keys == 0) return sizeof(uint64_t);
  return static_cast<double>(tally->second.bytes.load(std::memory_order_relaxed)) /
         static_cast<double>(keys);
}

const std::string& KVWorker::ServerName(int server_rank) const {
  return server_names_[server_rank];
}

int64_t KVWorker::Pull(const std::string& table, absl::Span<const uint64_t> keys,
                       std::vector<float>* values, PullMode mode) {
  return Submit(proto::PULL, table, Arrays{keys, {}, nullptr, nullptr}, PullOutput{values, nullptr},
                mode);
}

int64_t KVWorker::Pull(const std::string& table, absl::Span<const uint64_t> keys, PulledRows* rows,
                       PullMode mode) {
  return Submit(proto::PULL, table, Arrays{keys, {}, nullptr, nullptr}, PullOutput{nullptr, rows},
                mode);
}

int64_t KVWorker::Pull(const std::string& table, SharedArray<uint64_t> keys, PulledRows* rows,
                       PullMode mode) {
  if (keys == nullptr) {
    return Reject(proto::PULL, table, absl::InvalidArgumentError("null key array"));
  }
  Arrays arrays{*keys, {}, std::move(keys), nullptr};
  return Submit(proto::PULL, table, std::move(arrays), PullOutput{nullptr, rows}, mode);
}

int64_t KVWorker::Push(const std::string& table, absl::Span<const uint64_t> keys,
                       absl::Span<const float> grads) {
  return Submit(proto::PUSH, table, Arrays{keys, grads, nullptr, nullptr},
                PullOutput{nullptr, nullptr}, PullMode::kTrain);
}

int64_t KVWorker::Push(const std::string& table, SharedArray<uint64_t> keys,
                       SharedArray<float> grads) {
  if (keys == nullptr || grads == nullptr) {
    return Reject(proto::PUSH, table, absl::InvalidArgumentError("null key or gradient array"));
  }
  Arrays arrays{*keys, *grads, std::move(keys), std::move(grads)};
  return Submit(proto::PUSH, table, std::move(arrays), PullOutput{nullptr, nullptr},
                PullMode::kTrain);
}

int64_t KVWorker::Push(const std::string& table, std::vector<uint64_t>&& keys,
                       std::vector<float>&& grads) {
  return Push(table, std::make_shared<const std::vector<uint64_t>>(std::move(keys)),
              std::make_shared<const std::vector<float>>(std::move(grads)));
}

zmq::message_t KVWorker::SliceFrame(const std::shared_ptr<const void>& owner, const void* data,
                                    size_t begin, size_t end, size_t row_bytes) {
  const void* slice = static_cast<const uint8_t*>(data) + begin * row_bytes;
  const size_t bytes = (end - begin) * row_bytes;
  if (owner != nullptr) return FrameOfShared(owner, slice, bytes);
  return zmq::message_t(slice, bytes);
}

void PulledRows::Reset(int dim, size_t num_rows, size_t num_parts) {
  dim_ = dim;
  num_rows_ = num_rows;
  parts_.clear();
  parts_.resize(num_parts);
  unique_of_.clear();
}

void PulledRows::TakePart(size_t part, size_t begin, zmq::message_t&& frame) {
  Part& taken = parts_[part];
  taken.begin = begin;
  taken.frame = std::make_unique<zmq::message_t>(std::move(frame));
  // ZeroMQ keeps a small frame inside the message itself, possibly misaligned for floats.
  if (reinterpret_cast<uintptr_t>(taken.frame->data()) % alignof(float) == 0) {
    taken.rows = static_cast<const float*>(taken.frame->data());
  } else {
    taken.unaligned_copy.resize(taken.frame->size() / sizeof(float));
    std::memcpy(taken.unaligned_copy.data(), taken.frame->data(), taken.frame->size());
    taken.rows = taken.unaligned_copy.data();
  }
}

void PulledRows::CopyTo(std::vector<float>* values) const {
  const size_t dim = static_cast<size_t>(dim_);
  values->resize(num_rows_ * dim);
  if (contiguous()) {
    if (!parts_.empty())
      std::memcpy(values->data(), parts_[0].rows, num_rows_ * dim * sizeof(float));
    return;
  }
  for (size_t i = 0; i < num_rows_; ++i) {
    std::memcpy(values->data() + i * dim, row(i).data(), dim * sizeof(float));
  }
}

size_t KVWorker::DensePaddedSize(const std::string& table) const {
  auto keys = dense_keys_of_table_.find(table);
  return keys == dense_keys_of_table_.end() ? 0 : keys->second.size() * DimOf(table);
}

int64_t KVWorker::PullDense(const std::string& table, std::vector<float>* values, PullMode mode) {
  auto keys = dense_keys_of_table_.find(table);
  if (keys == dense_keys_of_table_.end()) {
    return Reject(
        proto::PULL, table,
        absl::NotFoundError(absl::StrCat("no dense table '", table, "' in the cluster config")));
  }
  return Submit(proto::PULL, table, Arrays{keys->second, {}, nullptr, nullptr},
                PullOutput{values, nullptr}, mode);
}

int64_t KVWorker::PushDense(const std::string& table, absl::Span<const float> grads) {
  auto keys = dense_keys_of_table_.find(table);
  if (keys == dense_keys_of_table_.end() || grads.size() != dense_size_of_table_[table]) {
    return Reject(
        proto::PUSH, table,
        absl::InvalidArgumentError(absl::StrCat("push of ", grads.size(), " floats to '", table,
                                                "', which is not a dense table of that size")));
  }
  // Zero gradients for the padding of the last block.
  std::vector<float> padded(DensePaddedSize(table), 0.0f);
  std::copy(grads.begin(), grads.end(), padded.begin());
  auto padded_grads = std::make_shared<const std::vector<float>>(std::move(padded));
  Arrays arrays{keys->second, *padded_grads, nullptr, padded_grads};
  return Submit(proto::PUSH, table, std::move(arrays), PullOutput{nullptr, nullptr},
                PullMode::kTrain);
}

int64_t KVWorker::Reject(proto::Command command, const std::string& table, absl::Status status) {
  auto request = std::make_unique<Request>();
  const int64_t id = next_id_++;
  request->id = id;
  request->command = command;
  request->table = table;
  request->status = absl::Status(
      status.code(), absl::StrCat(DescribeRequest(command, id, table), ": ", status.message()));
  request->done = true;
  std::lock_guard<std::mutex> lock(mutex_);
  requests_[id] = std::move(request);
  return id;
}

int64_t KVWorker::Submit(proto::Command command, const std::string& table, Arrays arrays,
                         PullOutput output, PullMode mode) {
  const absl::Span<const uint64_t> keys = arrays.keys;
  const size_t dim = DimOf(table);
  if (dim == 0) {
    return Reject(command, table, absl::NotFoundError("the cluster has no such table"));
  }
  if (command == proto::PUSH && arrays.grads.size() != keys.size() * dim) {
    return Reject(
        command, table,
        absl::InvalidArgumentError(absl::StrCat(arrays.grads.size(), " gradient floats for ",
                                                keys.size(), " keys of dim ", dim)));
  }
  auto request = std::make_unique<Request>();
  const int64_t id = next_id_++;
  request->id = id;
  request->command = command;
  request->table = table;
  request->dim = static_cast<int>(dim);
  request->output = output.values;
  request->rows = output.rows;
  request->deadline = absl::Now() + options_.request_timeout;
  const proto::WireConfig& wire = wire_of_table_.at(table);
  request->value_encoding = command == proto::PUSH ? wire.push_values() : wire.pull_values();
  std::vector<std::pair<int, Message>> outgoing;  // server rank, message
  // Deduplicate into ascending unique keys (and summed gradients), unless already so. The
  // deduplicated arrays are new, so the frames share them instead of copying them again.
  if (!IsSortedUnique(keys)) {
    std::vector<uint32_t> order(keys.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
    request->unique_of.resize(keys.size());
    auto unique_keys = std::make_shared<std::vector<uint64_t>>();
    for (uint32_t position : order) {
      if (unique_keys->empty() || unique_keys->back() != keys[position]) {
        unique_keys->push_back(keys[position]);
      }
      request->unique_of[position] = static_cast<uint32_t>(unique_keys->size() - 1);
    }
    if (command == proto::PUSH) {
      auto unique_grads = std::make_shared<std::vector<float>>(unique_keys->size() * dim, 0.0f);
      for (size_t i = 0; i < keys.size(); ++i) {
        float* sum = &(*unique_grads)[request->unique_of[i] * dim];
        const float* grad = &arrays.grads[i * dim];
        for (size_t d = 0; d < dim; ++d) sum[d] += grad[d];
      }
      arrays.grads = *unique_grads;
      arrays.grad_owner = std::move(unique_grads);
    } else if (output.values != nullptr) {
      request->unique_rows.resize(unique_keys->size() * dim);
    }
    arrays.keys = *unique_keys;
    arrays.key_owner = std::move(unique_keys);
  }
  if (output.values != nullptr) output.values->resize(keys.size() * dim);
  // A lossy push encoding (common/wire_codec.h): the gradients with their carried errors,
  // encoded once into a new array whose slices the frames share.
  std::shared_ptr<const std::vector<uint8_t>> encoded_grads;
  const size_t encoded_row_bytes = EncodedRowBytes(request->value_encoding, dim);
  if (command == proto::PUSH && request->value_encoding != proto::VALUES_FP32) {
    encoded_grads = std::make_shared<const std::vector<uint8_t>>(
        feedback_of_table_.at(table)->Encode(arrays.keys, arrays.grads));
  }

  std::vector<KeySlice> slices = shard_map_.SliceSortedKeys(arrays.keys);
  if (output.rows != nullptr) output.rows->Reset(static_cast<int>(dim), keys.size(), slices.size());
  for (size_t p = 0; p < slices.size(); ++p) {
    const KeySlice& slice = slices[p];
    request->parts.push_back(Part{slice.server_rank, slice.begin, slice.end, false});
    Message message;
    message.header = MakeHeader(command, options_.cluster_id, proto::WORKER, rank());
    proto::Header& header = message.header;
    header.set_sender_incarnation(view_.you().incarnation());
    header.set_request_id(static_cast<uint64_t>(id));
    header.set_table(table);
    header.set_shard_map_version(shard_map_.version());
    header.set_part(static_cast<uint32_t>(p));
    header.set_read_only(mode == PullMode::kEvaluate);
    header.set_value_encoding(request->value_encoding);
    const size_t part_size = slice.end - slice.begin;
    // A part whose encoded keys would not be smaller than raw ones (a few keys: Elias-Fano
    // rounds to whole words) goes raw; the header says which (common/wire_codec.h).
    const bool encode_keys = wire.keys() != proto::KEYS_RAW &&
                             EncodedKeyBytes(wire.keys(), part_size) < part_size * sizeof(uint64_t);
    if (wire.keys() != proto::KEYS_RAW && options_.on_encoded_keys) {
      options_.on_encoded_keys(table, arrays.keys.subspan(slice.begin, part_size));
    }
    if (!encode_keys) {
      message.keys = SliceFrame(arrays.key_owner, arrays.keys.data(), slice.begin, slice.end,
                                sizeof(uint64_t));
    } else {
      // An encoded key frame: the part's sorted unique keys, encoded into a new array the frame
      // owns.
      auto encoded = std::make_shared<const std::vector<uint64_t>>(
          EncodeKeys(wire.keys(), arrays.keys.subspan(slice.begin, part_size)));
      header.set_key_encoding(wire.keys());
      header.set_key_count(part_size);
      message.keys = FrameOfShared(encoded, encoded->data(), encoded->size() * sizeof(uint64_t));
    }
    if (wire.keys() != proto::KEYS_RAW) {
      KeyFrameTally& tally = key_tally_of_table_.at(table);
      tally.keys.fetch_add(part_size, std::memory_order_relaxed);
      tally.bytes.fetch_add(message.keys.size(), std::memory_order_relaxed);
    }
    if (encoded_grads != nullptr) {
      message.values = SliceFrame(encoded_grads, encoded_grads->data(), slice.begin, slice.end,
                                  encoded_row_bytes);
    } else if (command == proto::PUSH) {
      message.values = SliceFrame(arrays.grad_owner, arrays.grads.data(), slice.begin, slice.end,
                                  dim * sizeof(float));
    }
    outgoing.emplace_back(slice.server_rank, std::move(message));
  }
  request->parts_left = request->parts.size();
  if (request->parts.empty()) request->done = true;  // no keys: nothing to do

  Channel& channel = *ChannelOfThisThread();
  request->channel = &channel;
  {  // Registered before it is sent: whoever receives on the channel may see the reply first.
    std::lock_guard<std::mutex> lock(mutex_);
    Request& registered = *request;
    requests_[id] = std::move(request);
    if (!fenced_.empty()) {
      FailLocked(registered, absl::FailedPreconditionError(
                                 absl::StrCat(DescribeRequest(command, id, table), ": ", fenced_)));
      return id;
    }
    for (const auto& [server_rank, message] : outgoing) {
      auto dead = dead_servers_.find(server_rank);
      if (dead != dead_servers_.end()) {
        FailLocked(registered, absl::UnavailableError(absl::StrCat(
                                   DescribeRequest(command, id, table), ": ",
                                   ServerName(server_rank), " is dead: ", dead->second)));
        return id;
      }
    }
  }
  std::lock_guard<std::mutex> sending(channel.mutex);
  for (auto& [server_rank, message] : outgoing) {
    absl::Status sent = SendMessage(channel.dealers[server_rank], std::move(message));
    channel.poller->Sent(server_rank);
    if (!sent.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = requests_.find(id);
      if (it != requests_.end()) {
        FailLocked(*it->second, absl::UnavailableError(absl::StrCat(
                                    DescribeRequest(command, id, table), ": send to ",
                                    ServerName(server_rank), " failed: ", sent.message())));
      }
      break;
    }
  }
  return id;
}

absl::Status KVWorker::Wait(int64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = requests_.find(id);
  if (it == requests_.end()) {
    return absl::NotFoundError(absl::StrCat("no outstanding request ", id));
  }
  Request* request = it->second.get();
  while (!request->done || request->copies_in_flight > 0) {
    if (request->done) {  // failed while another thread copies a reply into its output
      request_done_.wait(lock);
      continue;
    }
    const absl::Time now = absl::Now();
    if (now >= request->deadline) {
      ExpireLocked(*request);
      continue;
    }
    Channel& channel = *request->channel;
    std::unique_lock<std::mutex> receiving(channel.mutex, std::try_to_lock);
    if (!receiving.owns_lock()) {
      // Another thread receives on this channel and signals when it finishes our request or
      // lets go of the channel.
      request_done_.wait_for(lock, absl::ToChronoMilliseconds(kReceiveSlice));
      continue;
    }
    const int sole_server = SoleOutstandingServer(*request);
    lock.unlock();
    ReceiveReplies(channel, std::min(kReceiveSlice, request->deadline - now), sole_server);
    receiving.unlock();
    lock.lock();
    // A waiter that found the channel taken may now take it.
    request_done_.notify_all();
  }
  absl::Status status = request->status;
  requests_.erase(id);
  return status;
}

void KVWorker::FailLocked(Request& request, absl::Status status) {
  if (request.done) return;
  request.status = std::move(status);
  request.done = true;
  request_done_.notify_all();
}

void KVWorker::FinishPartLocked(Request& request, size_t part_index) {
  Part& part = request.parts[part_index];
  if (part.done) return;
  part.done = true;
  if (--request.parts_left > 0 || request.done) return;
  if (request.rows != nullptr) {
    request.rows->unique_of_ = std::move(request.unique_of);
  } else if (request.command == proto::PULL && !request.unique_of.empty()) {
    const size_t dim = request.dim;
    float* out = request.output->data();
    for (size_t i = 0; i < request.unique_of.size(); ++i) {
      std::memcpy(out + i * dim, &request.unique_rows[request.unique_of[i] * dim],
                  dim * sizeof(float));
    }
  }
  request.done = true;
}

void KVWorker::MarkServerDead(int server_rank, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  dead_servers_[server_rank] = reason;
  for (auto& [id, request] : requests_) {
    for (const Part& part : request->parts) {
      if (part.server_rank == server_rank && !part.done) {
        FailLocked(*request, absl::UnavailableError(absl::StrCat(
                                 DescribeRequest(request->command, id, request->table), ": ",
                                 ServerName(server_rank), " is dead: ", reason)));
        break;
      }
    }
  }
}

void KVWorker::Fence(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  fenced_ = reason;
  for (auto& [id, request] : requests_) {
    FailLocked(*request, absl::FailedPreconditionError(absl::StrCat(
                             DescribeRequest(request->command, id, request->table), ": ", reason)));
  }
}

void KVWorker::HandleReply(Message&& reply, int server_rank) {
  const proto::Header& header = reply.header;
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = requests_.find(static_cast<int64_t>(header.request_id()));
  if (it == requests_.end() || it->second->done) {
    VLOG(1) << "dropping late reply to request " << header.request_id() << " from "
            << ServerName(server_rank);
    return;
  }
  Request& request = *it->second;
  // Only errors name the request: built when one needs it, not for every reply.
  auto what = [&] { return DescribeRequest(request.command, request.id, request.table); };
  if (header.part() >= request.parts.size() ||
      request.parts[header.part()].server_rank != server_rank) {
    FailLocked(request, absl::InternalError(absl::StrCat(what(), ": ", ServerName(server_rank),
                                                         " answered for part ", header.part(),
                                                         " it was not sent")));
    return;
  }
  if (header.command() == proto::ERROR_REPLY) {
    FailLocked(request,
               absl::FailedPreconditionError(absl::StrCat(
                   what(), " rejected by ", ServerName(server_rank), ": ", header.error())));
    return;
  }
  proto::Command expected = request.command == proto::PULL ? proto::PULL_REPLY : proto::PUSH_REPLY;
  if (header.command() != expected) {
    FailLocked(request,
               absl::InternalError(absl::StrCat(what(), ": ", ServerName(server_rank), " replied ",
                                                proto::Command_Name(header.command()))));
    return;
  }
  const Part& part = request.parts[header.part()];
  if (request.command == proto::PULL) {
    if (header.value_encoding() != request.value_encoding) {
      FailLocked(request, absl::DataLossError(absl::StrCat(
                              what(), ": ", ServerName(server_rank), " sent values encoded #",
                              header.value_encoding(), ", expected ",
                              proto::ValueEncoding_Name(request.value_encoding),
                              " (the worker's and the server's TableConfig.wire differ)")));
      return;
    }
    const size_t rows = part.end - part.begin;
    size_t expected_bytes = rows * EncodedRowBytes(request.value_encoding, request.dim);
    if (reply.values.size() != expected_bytes) {
      FailLocked(request, absl::DataLossError(absl::StrCat(
                              what(), ": ", ServerName(server_rank), " sent ", reply.values.size(),
                              " value bytes, expected ", expected_bytes)));
      return;
    }
    if (request.rows != nullptr) {
      zmq::message_t rows_frame = std::move(reply.values);
      if (request.value_encoding != proto::VALUES_FP32) {
        // A light wire's rows are decoded once, into an array the view then owns.
        std::vector<float> decoded(rows * static_cast<size_t>(request.dim));
        const absl::Status status = DecodeValues(
            request.value_encoding,
            absl::MakeConstSpan(static_cast<const uint8_t*>(rows_frame.data()), expected_bytes),
            rows, request.dim, decoded.data());
        if (!status.ok()) {
          FailLocked(request, absl::DataLossError(absl::StrCat(
                                  what(), ": ", ServerName(server_rank), ": ", status.message())));
          return;
        }
        rows_frame = FrameFromVector(std::move(decoded));
      }
      // A move: the view keeps the reply's own bytes (or the decoded rows).
      request.rows->TakePart(header.part(), part.begin, std::move(rows_frame));
      FinishPartLocked(request, header.part());
      lock.unlock();
      request_done_.notify_all();
      return;
    }
    float* destination =
        request.unique_of.empty() ? request.output->data() : request.unique_rows.data();
    // Outside mutex_, so that threads receiving on other channels copy in parallel; the
    // request stays registered (its output alive) while copies_in_flight > 0.
    ++request.copies_in_flight;
    lock.unlock();
    // fp32 rows are copied as they are; others decode (their size was checked above).
    const absl::Status decoded = DecodeValues(
        request.value_encoding,
        absl::MakeConstSpan(static_cast<const uint8_t*>(reply.values.data()), expected_bytes), rows,
        request.dim, destination + part.begin * request.dim);
    lock.lock();
    --request.copies_in_flight;
    if (!decoded.ok()) {
      FailLocked(request, absl::DataLossError(absl::StrCat(what(), ": ", ServerName(server_rank),
                                                           ": ", decoded.message())));
      return;
    }
  }
  FinishPartLocked(request, header.part());
  lock.unlock();
  // Outside mutex_: a waiter woken while we still held it would only block on it again.
  request_done_.notify_all();
}

void KVWorker::ExpireLocked(Request& request) {
  std::string missing;
  for (const Part& part : request.parts) {
    if (!part.done)
      absl::StrAppend(&missing, missing.empty() ? "" : ", ", ServerName(part.server_rank));
  }
  FailLocked(request,
             absl::DeadlineExceededError(absl::StrCat(
                 DescribeRequest(request.command, request.id, request.table), ": no reply within ",
                 absl::FormatDuration(options_.request_timeout), " from ", missing)));
}

int KVWorker::SoleOutstandingServer(const Request& request) {
  int server_rank = -1;
  for (const Part& part : request.parts) {
    if (part.done) continue;
    if (server_rank >= 0) return -1;
    server_rank = part.server_rank;
  }
  return server_rank;
}

void KVWorker::ReceiveReplies(Channel& channel, absl::Duration timeout, int sole_server) {
  const std::chrono::milliseconds timeout_ms(
      std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
  SocketPoller& poller = *channel.poller;
  std::vector<zmq::message_t> frames;
  if (sole_server >= 0) {
    if (poller.Receive(sole_server, &frames, timeout_ms))
      HandleFrames(std::move(frames), sole_server);
    return;
  }
  if (!poller.Wait(timeout_ms)) return;
  // One message per dealer, then back to the caller, who is done once its own replies are in:
  // receiving until a dealer is empty would cost one more system call per reply, and the next
  // Wait asks the dealers that got a message anyway.
  for (size_t s = 0; s < channel.dealers.size(); ++s) {
    if (!poller.MayHaveInput(s) || !poller.TryReceive(s, &frames)) continue;
    HandleFrames(std::move(frames), static_cast<int>(s));
  }
}

void KVWorker::HandleFrames(std::vector<zmq::message_t>&& frames, int server_rank) {
  Message reply;
  absl::Status decoded =
      DecodeMessage(std::move(frames), options_.cluster_id, ServerName(server_rank), &reply);
  if (!decoded.ok()) {
    LOG(ERROR) << "worker " << rank() << ": bad reply: " << decoded.message();
    if (reply.header.request_id() == 0) return;
    // Fail the request it names rather than leave it to time out.
    reply.header.set_command(proto::ERROR_REPLY);
    reply.header.set_error(std::string(decoded.message()));
  }
  HandleReply(std::move(reply), server_rank);
}

}  // namespace granary
