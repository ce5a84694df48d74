#include "common/scheduler_client.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/ipc_endpoint.h"
#include "common/node_name.h"
#include "common/socket_options.h"
#include "glog/logging.h"

namespace granary {
namespace {

std::string UniqueInprocEndpoint(const void* owner) {
  return absl::StrCat("inproc://scheduler-client-", reinterpret_cast<uintptr_t>(owner));
}

// Receives one message from `socket` if one is ready within `timeout`. Returns false on
// timeout. Decode errors are logged and dropped: the scheduler is the only peer.
bool ReceiveWithin(zmq::socket_t& socket, absl::Duration timeout, const std::string& cluster_id,
                   const std::string& scheduler, Message* message, absl::Status* status) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  long timeout_ms = std::max<long>(0, absl::ToInt64Milliseconds(timeout));
  if (PollSockets(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return false;
  std::vector<zmq::message_t> frames;
  zmq::recv_result_t received = zmq::recv_multipart(socket, std::back_inserter(frames));
  if (!received) return false;
  *status = DecodeMessage(std::move(frames), cluster_id, scheduler, message);
  return true;
}

}  // namespace

SchedulerClient::SchedulerClient(zmq::context_t* context, SchedulerClientOptions options)
    : context_(context),
      options_(std::move(options)),
      wakeup_endpoint_(UniqueInprocEndpoint(this)),
      dealer_(*context, zmq::socket_type::dealer),
      wakeup_sender_(*context, zmq::socket_type::pair) {
  ConfigureSocket(dealer_, options_.socket_limits);
  ConfigureCurveClient(dealer_, options_.curve);
  wakeup_sender_.set(zmq::sockopt::linger, 0);
}

SchedulerClient::~SchedulerClient() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (thread_.joinable()) wakeup_sender_.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
  }
  if (thread_.joinable()) thread_.join();
}

proto::Header SchedulerClient::NewHeader(proto::Command command) const {
  proto::Header header =
      MakeHeader(command, options_.cluster_id, options_.role, view_.you().rank());
  header.set_sender_incarnation(view_.you().incarnation());
  return header;
}

absl::Status SchedulerClient::Connect() {
  std::string endpoint = absl::StrCat("tcp://", options_.scheduler_address);
  try {
    dealer_.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot connect to scheduler ", endpoint, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::Header> SchedulerClient::ControlRequest(proto::Command command,
                                                              absl::Duration timeout) {
  absl::Status status = Connect();
  if (!status.ok()) return status;
  proto::Header request = NewHeader(command);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    request.set_request_id(next_request_id_++);
  }
  status = SendMessage(dealer_, Message{request, {}, {}});
  if (!status.ok()) return status;
  Message reply;
  absl::Status decoded;
  if (!ReceiveWithin(dealer_, timeout, options_.cluster_id, options_.scheduler_address, &reply,
                     &decoded)) {
    return absl::DeadlineExceededError(
        absl::StrCat("scheduler ", options_.scheduler_address, " did not answer ",
                     proto::Command_Name(command), " within ", absl::FormatDuration(timeout)));
  }
  if (!decoded.ok()) {
    return absl::Status(decoded.code(), absl::StrCat("scheduler ", options_.scheduler_address,
                                                     " answered: ", decoded.message()));
  }
  if (reply.header.command() == proto::ERROR_REPLY) {
    return absl::FailedPreconditionError(absl::StrCat("scheduler ", options_.scheduler_address,
                                                      " answered: ", reply.header.error()));
  }
  return reply.header;
}

absl::Status SchedulerClient::Register() {
  absl::Status connected = Connect();
  if (!connected.ok()) return connected;
  proto::Header header = NewHeader(proto::REGISTER);
  header.set_sender_rank(-1);
  proto::NodeInfo* node = header.mutable_node();
  node->set_role(options_.role);
  node->set_rank(-1);
  node->set_host(options_.host);
  node->set_port(options_.port);
  node->set_host_id(LocalHostId());
  node->set_ipc_endpoint(options_.ipc_endpoint);
  node->set_pid(getpid());
  absl::Status status = SendMessage(dealer_, Message{header, {}, {}});
  if (!status.ok()) return status;

  // Heartbeats start now: a scheduler that dies while the cluster forms is noticed within
  // heartbeat_timeout, not only at register_timeout.
  proto::Header heartbeat = NewHeader(proto::HEARTBEAT);
  heartbeat.set_sender_rank(-1);
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options_.register_timeout;
  absl::Time last_heard = start;
  absl::Time next_heartbeat = start + options_.heartbeat_interval;
  while (true) {
    absl::Time now = absl::Now();
    if (now >= deadline) break;
    if (now - last_heard > options_.heartbeat_timeout) {
      return absl::UnavailableError(
          absl::StrCat("scheduler ", options_.scheduler_address, " silent for ",
                       absl::FormatDuration(absl::Trunc(now - last_heard, absl::Milliseconds(1))),
                       " (timeout ", absl::FormatDuration(options_.heartbeat_timeout),
                       ") while waiting for the cluster view"));
    }
    if (now >= next_heartbeat) {
      SendMessage(dealer_, Message{heartbeat, {}, {}}).IgnoreError();
      next_heartbeat = now + options_.heartbeat_interval;
    }
    // Wake for the next heartbeat, the silence limit (just past it) or the deadline.
    absl::Time wake = std::min({deadline, next_heartbeat,
                                last_heard + options_.heartbeat_timeout + absl::Milliseconds(1)});
    Message reply;
    absl::Status decoded;
    if (!ReceiveWithin(dealer_, wake - now, options_.cluster_id, options_.scheduler_address, &reply,
                       &decoded)) {
      continue;
    }
    if (!decoded.ok()) {
      LOG(ERROR) << "ignoring bad message from scheduler " << options_.scheduler_address << ": "
                 << decoded.message();
      continue;
    }
    last_heard = absl::Now();
    if (reply.header.command() == proto::ERROR_REPLY) {
      return absl::FailedPreconditionError(
          absl::StrCat("scheduler ", options_.scheduler_address,
                       " refused registration: ", reply.header.error()));
    }
    if (reply.header.command() == proto::SHUTDOWN) {
      return absl::AbortedError(
          absl::StrCat("scheduler ", options_.scheduler_address,
                       " shut down before the cluster formed: ", reply.header.error()));
    }
    if (reply.header.command() != proto::CLUSTER_VIEW) continue;
    view_ = reply.header.view();
    wakeup_sender_.connect(wakeup_endpoint_);  // inproc connect before bind is allowed
    thread_ = std::thread([this] { Run(); });
    LOG(INFO) << "registered as " << NodeName(view_.you()) << " with scheduler "
              << options_.scheduler_address << "; " << view_.nodes_size() << " nodes";
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no cluster view from scheduler ", options_.scheduler_address, " within ",
                   absl::FormatDuration(options_.register_timeout),
                   " (is it running, and are all servers and workers started?)"));
}

void SchedulerClient::Enqueue(proto::Header header) {
  std::lock_guard<std::mutex> lock(mutex_);
  outbox_.push_back(std::move(header));
  wakeup_sender_.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
}

absl::Status SchedulerClient::Barrier(const std::string& name, const std::string& group,
                                      absl::Duration timeout) {
  proto::Header header = NewHeader(proto::BARRIER);
  header.set_barrier_name(name);
  header.set_barrier_group(group);
  Enqueue(std::move(header));
  std::unique_lock<std::mutex> lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  bool done = changed_.wait_until(lock, deadline, [&] {
    return barrier_done_.count(name) > 0 || shutdown_requested_ || scheduler_lost_;
  });
  if (!done) {
    return absl::DeadlineExceededError(
        absl::StrCat("barrier '", name, "' (", group, "): scheduler ", options_.scheduler_address,
                     " did not release it within ", absl::FormatDuration(timeout)));
  }
  auto it = barrier_done_.find(name);
  if (it == barrier_done_.end()) {
    return absl::AbortedError(absl::StrCat(
        "barrier '", name, "': ", scheduler_lost_ ? "scheduler lost" : "shutting down"));
  }
  std::string error = it->second;
  barrier_done_.erase(it);
  if (!error.empty()) return absl::AbortedError(absl::StrCat("barrier '", name, "': ", error));
  return absl::OkStatus();
}

void SchedulerClient::ReportJobDone(const absl::Status& outcome) {
  proto::Header header = NewHeader(proto::JOB_DONE);
  if (!outcome.ok()) header.set_error(std::string(outcome.message()));
  Enqueue(std::move(header));
}

absl::StatusOr<proto::Header> SchedulerClient::Call(proto::Header request, absl::Duration timeout) {
  absl::StatusOr<std::optional<proto::Header>> reply =
      CallUnless(std::move(request), timeout, [] { return false; });
  if (!reply.ok()) return reply.status();
  return **std::move(reply);
}

absl::StatusOr<std::optional<proto::Header>> SchedulerClient::CallUnless(
    proto::Header request, absl::Duration timeout, const std::function<bool()>& stop_waiting) {
  const std::string what = absl::StrCat(proto::Command_Name(request.command()), " '",
                                        request.queue_name(), request.queue().name(), "'");
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t id = next_request_id_++;
  request.set_request_id(id);
  calls_[id];
  outbox_.push_back(std::move(request));
  wakeup_sender_.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  changed_.wait_until(lock, deadline, [&] {
    return calls_[id].has_value() || shutdown_requested_ || scheduler_lost_ || stop_waiting();
  });
  std::optional<proto::Header> reply = std::move(calls_[id]);
  calls_.erase(id);
  if (!reply.has_value()) {
    if (stop_waiting()) return std::nullopt;
    if (scheduler_lost_) {
      return absl::UnavailableError(
          absl::StrCat(what, ": scheduler ", options_.scheduler_address, " lost"));
    }
    if (shutdown_requested_) return absl::AbortedError(absl::StrCat(what, ": shutting down"));
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": scheduler ", options_.scheduler_address, " did not answer within ",
                     absl::FormatDuration(timeout)));
  }
  if (reply->command() == proto::ERROR_REPLY) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", reply->error()));
  }
  return reply;
}

void SchedulerClient::DeliverReplyLocked(proto::Header reply) {
  auto call = calls_.find(reply.request_id());
  if (call != calls_.end()) {
    call->second = std::move(reply);
    changed_.notify_all();
  } else if (reply.command() == proto::CHUNK && reply.has_chunk()) {
    // Its call gave up; the scheduler counts the chunk as ours, so the next call takes it.
    unclaimed_chunks_[reply.queue_name()].push_back(reply.chunk());
    changed_.notify_all();  // a NextChunk call of that queue may be waiting
  } else if (reply.command() == proto::CHUNK) {
    drained_totals_[reply.queue_name()] = reply.queue_totals();
    VLOG(1) << "queue '" << reply.queue_name() << "' drained (answer to an abandoned call)";
  } else {
    LOG(WARNING) << "late " << proto::Command_Name(reply.command()) << " from scheduler "
                 << options_.scheduler_address << " for request " << reply.request_id();
  }
}

absl::Status SchedulerClient::OpenQueue(const proto::WorkQueueSpec& spec, absl::Duration timeout) {
  proto::Header request = NewHeader(proto::OPEN_QUEUE);
  *request.mutable_queue() = spec;
  return Call(std::move(request), timeout).status();
}

absl::StatusOr<std::optional<proto::Chunk>> SchedulerClient::NextChunk(const std::string& name,
                                                                       absl::Duration timeout) {
  // REQUIRES: mutex_ held.
  auto take_unclaimed = [this, &name]() -> std::optional<proto::Chunk> {
    auto unclaimed = unclaimed_chunks_.find(name);
    if (unclaimed == unclaimed_chunks_.end() || unclaimed->second.empty()) return std::nullopt;
    proto::Chunk chunk = std::move(unclaimed->second.front());
    unclaimed->second.pop_front();
    return chunk;
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (std::optional<proto::Chunk> chunk = take_unclaimed()) return chunk;
  }
  proto::Header request = NewHeader(proto::NEXT_CHUNK);
  request.set_queue_name(name);
  // An earlier call's chunk arriving while we wait serves this call; our own request then
  // stays with the scheduler, and its answer serves the next call.
  absl::StatusOr<std::optional<proto::Header>> reply =
      CallUnless(std::move(request), timeout, [this, &name] {
        auto unclaimed = unclaimed_chunks_.find(name);
        return unclaimed != unclaimed_chunks_.end() && !unclaimed->second.empty();
      });
  if (!reply.ok()) return reply.status();
  if (!reply->has_value()) {
    std::lock_guard<std::mutex> lock(mutex_);
    return take_unclaimed();
  }
  if ((*reply)->queue_drained()) {
    std::lock_guard<std::mutex> lock(mutex_);
    drained_totals_[name] = (*reply)->queue_totals();
    return std::nullopt;
  }
  return (*reply)->chunk();
}

absl::Status SchedulerClient::FinishChunk(const std::string& name, uint64_t chunk_id,
                                          absl::Duration timeout,
                                          const proto::ChunkProgress& progress) {
  proto::Header request = NewHeader(proto::CHUNK_DONE);
  request.set_queue_name(name);
  request.mutable_chunk()->set_id(chunk_id);
  if (!progress.queue().empty()) *request.mutable_chunk_progress() = progress;
  return Call(std::move(request), timeout).status();
}

void SchedulerClient::ReportChunkProgress(const proto::ChunkProgress& progress) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (proto::Header& unsent : outbox_) {
    if (unsent.command() == proto::CHUNK_PROGRESS &&
        unsent.chunk_progress().chunk_id() == progress.chunk_id() &&
        unsent.chunk_progress().queue() == progress.queue()) {
      *unsent.mutable_chunk_progress() = progress;
      return;
    }
  }
  proto::Header report = NewHeader(proto::CHUNK_PROGRESS);
  *report.mutable_chunk_progress() = progress;
  outbox_.push_back(std::move(report));
  wakeup_sender_.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
}

proto::QueueTotals SchedulerClient::DrainedQueueTotals(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto totals = drained_totals_.find(name);
  return totals == drained_totals_.end() ? proto::QueueTotals() : totals->second;
}

void SchedulerClient::ReportClock(const std::string& name, int64_t steps) {
  proto::Header report = NewHeader(proto::CLOCK);
  report.mutable_clock()->set_name(name);
  report.mutable_clock()->set_step(steps);
  Enqueue(std::move(report));
}

void SchedulerClient::ReportClockDone(const std::string& name) {
  proto::Header report = NewHeader(proto::CLOCK);
  report.mutable_clock()->set_name(name);
  report.mutable_clock()->set_done(true);
  Enqueue(std::move(report));
}

absl::Status SchedulerClient::WaitForClock(const std::string& name, int64_t steps,
                                           absl::Duration timeout) {
  return WaitForClockUntil(
      name, [steps](int64_t minimum, const proto::Clock*) { return steps <= minimum; },
      absl::StrCat("every worker to finish step ", steps), timeout);
}

absl::Status SchedulerClient::WaitForClockTurn(const std::string& name, int64_t steps,
                                               absl::Duration timeout) {
  const int rank = this->rank();
  return WaitForClockUntil(
      name,
      [steps, rank](int64_t minimum, const proto::Clock* clock) {
        if (minimum >= steps) return true;
        // The ranks at the minimum are known only once the scheduler pushed them.
        if (clock == nullptr || minimum != steps - 1) return false;
        return std::all_of(clock->behind().begin(), clock->behind().end(),
                           [rank](int behind) { return behind >= rank; });
      },
      absl::StrCat("every worker to reach step ", steps - 1, " and those ranked below ", rank,
                   " step ", steps),
      timeout);
}

absl::Status SchedulerClient::WaitForClockUntil(
    const std::string& name, const std::function<bool(int64_t, const proto::Clock*)>& reached,
    const std::string& waiting_for, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto is_reached = [&] {
    auto clock = min_clocks_.find(name);
    return clock == min_clocks_.end() ? reached(0, nullptr)
                                      : reached(clock->second.step(), &clock->second);
  };
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  changed_.wait_until(lock, deadline,
                      [&] { return is_reached() || shutdown_requested_ || scheduler_lost_; });
  if (is_reached()) return absl::OkStatus();
  if (shutdown_requested_) {
    return absl::AbortedError(absl::StrCat("clock '", name, "': shutting down"));
  }
  if (scheduler_lost_) {
    return absl::UnavailableError(
        absl::StrCat("clock '", name, "': scheduler ", options_.scheduler_address, " lost"));
  }
  auto clock = min_clocks_.find(name);
  std::string behind = "every worker (no step reported yet)";
  if (clock != min_clocks_.end()) {
    behind.clear();
    for (int rank : clock->second.behind()) {
      absl::StrAppend(&behind, behind.empty() ? "worker " : ", worker ", rank);
    }
    absl::StrAppend(&behind, " at step ", clock->second.step());
  }
  return absl::DeadlineExceededError(absl::StrCat("clock '", name, "': waited ",
                                                  absl::FormatDuration(timeout), " for ",
                                                  waiting_for, "; behind: ", behind));
}

absl::StatusOr<proto::Header> SchedulerClient::WaitForOrder(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  changed_.wait_until(lock, deadline,
                      [&] { return !orders_.empty() || shutdown_requested_ || scheduler_lost_; });
  if (shutdown_requested_) return absl::AbortedError("shutdown ordered");
  if (scheduler_lost_) {
    return absl::UnavailableError(absl::StrCat("scheduler ", options_.scheduler_address, " lost"));
  }
  if (orders_.empty()) return absl::DeadlineExceededError("no order");
  proto::Header order = std::move(orders_.front());
  orders_.pop_front();
  return order;
}

void SchedulerClient::AnswerOrder(const proto::Header& order, const absl::Status& outcome,
                                  const proto::Header& results) {
  proto::Header reply = results;
  reply.MergeFrom(MakeReplyHeader(order, outcome.ok() ? proto::ACK : proto::ERROR_REPLY,
                                  options_.cluster_id, options_.role, view_.you().rank()));
  reply.set_sender_incarnation(view_.you().incarnation());
  if (!outcome.ok()) reply.set_error(std::string(outcome.message()));
  Enqueue(std::move(reply));
}

absl::Status SchedulerClient::WaitForShutdown(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  changed_.wait_until(lock, deadline, [&] { return shutdown_requested_ || scheduler_lost_; });
  if (shutdown_requested_) return absl::OkStatus();
  if (scheduler_lost_) {
    return absl::UnavailableError(absl::StrCat("scheduler ", options_.scheduler_address,
                                               " silent for more than ",
                                               absl::FormatDuration(options_.heartbeat_timeout)));
  }
  return absl::DeadlineExceededError("no shutdown order yet");
}

std::string SchedulerClient::fenced_reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fenced_reason_;
}

std::vector<int> SchedulerClient::dead_workers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::vector<int>(dead_workers_.begin(), dead_workers_.end());
}

void SchedulerClient::SetNodeDeadCallback(
    std::function<void(const proto::NodeInfo& node)> callback) {
  std::function<void(const proto::NodeInfo&)> replaced;
  {
    std::lock_guard<std::mutex> lock(callback_mutex_);
    replaced = std::exchange(node_dead_callback_, std::move(callback));
  }
  // `replaced` (and what it captured) is destroyed here, outside the lock.
}

void SchedulerClient::SetNodeJoinedCallback(
    std::function<void(const proto::NodeInfo& node)> callback) {
  std::function<void(const proto::NodeInfo&)> replaced;
  {
    std::lock_guard<std::mutex> lock(callback_mutex_);
    replaced = std::exchange(node_joined_callback_, std::move(callback));
  }
}

void SchedulerClient::HandleIncoming(Message&& message) {
  const proto::Header& header = message.header;
  switch (header.command()) {
    case proto::HEARTBEAT_ACK:
      break;
    case proto::NODE_DEAD: {
      LOG(ERROR) << "scheduler reports " << NodeName(header.node()) << " dead: " << header.error();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (header.node().role() == proto::WORKER) dead_workers_.insert(header.node().rank());
      }
      std::lock_guard<std::mutex> lock(callback_mutex_);
      if (node_dead_callback_) node_dead_callback_(header.node());
      break;
    }
    case proto::NODE_JOINED: {
      LOG(INFO) << "scheduler reports " << NodeName(header.node()) << " (incarnation "
                << header.node().incarnation() << ") joined as a replacement";
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (header.node().role() == proto::WORKER) dead_workers_.erase(header.node().rank());
      }
      std::lock_guard<std::mutex> lock(callback_mutex_);
      if (node_joined_callback_) node_joined_callback_(header.node());
      break;
    }
    case proto::BARRIER_RELEASE: {
      std::lock_guard<std::mutex> lock(mutex_);
      barrier_done_[header.barrier_name()] = header.error();
      changed_.notify_all();
      break;
    }
    case proto::ACK:
    case proto::CHUNK:
    case proto::ERROR_REPLY: {
      std::lock_guard<std::mutex> lock(mutex_);
      DeliverReplyLocked(header);
      break;
    }
    case proto::MIN_CLOCK: {
      std::lock_guard<std::mutex> lock(mutex_);
      min_clocks_[header.clock().name()] = header.clock();
      changed_.notify_all();
      break;
    }
    case proto::CHECKPOINT:
    case proto::SHRINK:
    case proto::EXPORT_DELTA: {
      std::lock_guard<std::mutex> lock(mutex_);
      orders_.push_back(header);
      changed_.notify_all();
      break;
    }
    case proto::SHUTDOWN: {
      // The scheduler names this node in the order when it fenced it (declared it dead).
      const bool fenced = header.has_node() && header.node().role() == view_.you().role() &&
                          header.node().rank() == view_.you().rank() &&
                          header.node().incarnation() == view_.you().incarnation();
      if (fenced) {
        LOG(ERROR) << "scheduler " << options_.scheduler_address
                   << " refuses us: " << header.error();
      } else {
        LOG(INFO) << "scheduler orders shutdown" << (header.error().empty() ? "" : ": ")
                  << header.error();
      }
      SendMessage(dealer_, Message{NewHeader(proto::SHUTDOWN_ACK), {}, {}}).IgnoreError();
      bool newly_fenced = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (fenced && fenced_reason_.empty()) {
          fenced_reason_ = header.error();
          newly_fenced = true;
        }
        shutdown_requested_ = true;
        changed_.notify_all();
      }
      if (newly_fenced) {
        std::lock_guard<std::mutex> lock(callback_mutex_);
        if (node_dead_callback_) node_dead_callback_(view_.you());
      }
      break;
    }
    default:
      LOG(WARNING) << "unexpected " << proto::Command_Name(header.command()) << " from scheduler "
                   << options_.scheduler_address;
  }
}

void SchedulerClient::Run() {
  zmq::socket_t wakeup(*context_, zmq::socket_type::pair);
  wakeup.set(zmq::sockopt::linger, 0);
  wakeup.bind(wakeup_endpoint_);
  absl::Time last_heard = absl::Now();
  absl::Time next_heartbeat = absl::Now();
  absl::Time last_round = absl::Now();
  while (!stop_) {
    absl::Time now = absl::Now();
    // A round starts at least every heartbeat_interval. A longer gap means this process was
    // stopped (SIGSTOP, swap): the scheduler was silent because we did not ask, so its silence
    // counts from our next heartbeat, whose answer may be that we were fenced meanwhile.
    if (now - last_round > options_.heartbeat_timeout) last_heard = now;
    last_round = now;
    if (now >= next_heartbeat) {
      SendMessage(dealer_, Message{NewHeader(proto::HEARTBEAT), {}, {}}).IgnoreError();
      next_heartbeat = now + options_.heartbeat_interval;
    }
    if (!scheduler_lost_ && now - last_heard > options_.heartbeat_timeout) {
      LOG(ERROR) << "scheduler " << options_.scheduler_address << " silent for "
                 << absl::FormatDuration(now - last_heard) << " (timeout "
                 << absl::FormatDuration(options_.heartbeat_timeout) << ")";
      std::lock_guard<std::mutex> lock(mutex_);
      scheduler_lost_ = true;
      changed_.notify_all();
    }
    zmq::pollitem_t items[] = {{dealer_.handle(), 0, ZMQ_POLLIN, 0},
                               {wakeup.handle(), 0, ZMQ_POLLIN, 0}};
    long wait_ms = std::max<long>(1, absl::ToInt64Milliseconds(next_heartbeat - absl::Now()));
    PollSockets(items, 2, std::chrono::milliseconds(wait_ms));
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t ignored;
      while (wakeup.recv(ignored, zmq::recv_flags::dontwait)) {
      }
    }
    std::deque<proto::Header> outgoing;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      outgoing.swap(outbox_);
    }
    for (proto::Header& header : outgoing) {
      SendMessage(dealer_, Message{std::move(header), {}, {}}).IgnoreError();
    }
    while (items[0].revents & ZMQ_POLLIN) {
      Message message;
      absl::Status decoded;
      if (!ReceiveWithin(dealer_, absl::ZeroDuration(), options_.cluster_id,
                         options_.scheduler_address, &message, &decoded)) {
        break;
      }
      if (!decoded.ok()) {
        LOG(ERROR) << "ignoring bad message from scheduler: " << decoded.message();
        continue;
      }
      last_heard = absl::Now();
      if (scheduler_lost_) {
        LOG(INFO) << "scheduler " << options_.scheduler_address << " is back";
        scheduler_lost_ = false;
      }
      HandleIncoming(std::move(message));
    }
  }
}

}  // namespace granary
