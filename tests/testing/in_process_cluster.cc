#include "tests/testing/in_process_cluster.h"

#include <stdlib.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace {
constexpr absl::Duration kFormTimeout = absl::Seconds(30);
}  // namespace

InProcessCluster::InProcessCluster(InProcessClusterOptions options)
    : options_(std::move(options)), context_(options_.io_threads) {}

InProcessCluster::~InProcessCluster() { Stop(); }

absl::Status InProcessCluster::Start() {
  // As the roles' main.cc do: the handler must serve the context before a CURVE server binds.
  zap_ = std::make_unique<ZapHandler>(&context_, options_.curve, "in-process cluster");
  SchedulerOptions scheduler_options;
  scheduler_options.cluster_id = options_.cluster_id;
  scheduler_options.curve = options_.curve;
  scheduler_options.num_servers = options_.num_servers;
  scheduler_options.num_workers = options_.num_workers;
  scheduler_options.config = options_.config;
  scheduler_options.register_timeout = kFormTimeout;
  scheduler_options.checkpoint_dir = options_.checkpoint_dir;
  scheduler_options.checkpoint_every_chunks = options_.checkpoint_every_chunks;
  scheduler_options.checkpoint_every = options_.checkpoint_every;
  scheduler_options.day = options_.day;
  scheduler_options.base_dir = options_.base_dir;
  scheduler_options.close_day_into = options_.close_day_into;
  scheduler_ = std::make_unique<Scheduler>(&context_, scheduler_options);
  scheduler_thread_ = std::thread([this] {
    scheduler_status_ = scheduler_->Run();
    scheduler_exited_ = true;
  });
  absl::Time deadline = absl::Now() + kFormTimeout;
  while (scheduler_->port() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  if (scheduler_->port() == 0) return absl::DeadlineExceededError("scheduler did not bind");

  SchedulerClientOptions client_options;
  client_options.scheduler_address = absl::StrCat("127.0.0.1:", scheduler_->port());
  client_options.cluster_id = options_.cluster_id;
  client_options.curve = options_.curve;
  client_options.register_timeout = kFormTimeout;
  data_dir_ = options_.data_dir;
  if (data_dir_.empty()) {
    std::string pattern =
        absl::StrCat(std::filesystem::temp_directory_path().string(), "/granary-in-process-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) return absl::UnavailableError("mkdtemp failed");
    data_dir_ = pattern;
    owns_data_dir_ = true;
  }
  ServerOptions server_options;
  server_options.data_dir = data_dir_;
  server_options.cache_bytes = options_.cache_bytes;
  server_options.cluster_id = options_.cluster_id;
  server_options.curve = options_.curve;
  server_options.apply_updates = options_.apply_updates;
  server_options.num_threads = options_.server_threads;
  server_options.max_request_keys = options_.server_max_request_keys;
  server_options.max_request_bytes = options_.server_max_request_bytes;
  server_options.max_requests_per_peer = options_.server_max_requests_per_peer;
  if (options_.ipc) server_options.ipc_dir = data_dir_ + "/ipc";
  for (int i = 0; i < options_.num_servers; ++i) {
    servers_.push_back(std::make_unique<ParameterServer>(&context_, server_options));
    absl::StatusOr<int> port = servers_.back()->Bind();
    if (!port.ok()) return port.status();
    SchedulerClientOptions server_client = client_options;
    server_client.role = proto::SERVER;
    server_client.port = *port;
    server_client.ipc_endpoint = servers_.back()->ipc_endpoint();
    server_clients_.push_back(std::make_unique<SchedulerClient>(&context_, server_client));
  }
  for (int i = 0; i < options_.num_workers; ++i) {
    SchedulerClientOptions worker_client = client_options;
    worker_client.role = proto::WORKER;
    worker_clients_.push_back(std::make_unique<SchedulerClient>(&context_, worker_client));
  }
  // Register() blocks until everyone registered, so all nodes register concurrently.
  std::vector<SchedulerClient*> all;
  for (auto& client : server_clients_) all.push_back(client.get());
  for (auto& client : worker_clients_) all.push_back(client.get());
  std::vector<absl::Status> statuses(all.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < all.size(); ++i) {
    threads.emplace_back([&, i] { statuses[i] = all[i]->Register(); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
  // Rank order, not arrival order: server_clients_[i] is not necessarily server i.
  std::vector<std::unique_ptr<ParameterServer>> servers_by_rank(servers_.size());
  std::vector<std::unique_ptr<SchedulerClient>> clients_by_rank(servers_.size());
  for (size_t i = 0; i < servers_.size(); ++i) {
    int rank = server_clients_[i]->rank();
    absl::Status status = servers_[i]->Start(server_clients_[i]->view());
    if (!status.ok()) return status;
    servers_by_rank[rank] = std::move(servers_[i]);
    clients_by_rank[rank] = std::move(server_clients_[i]);
  }
  servers_ = std::move(servers_by_rank);
  server_clients_ = std::move(clients_by_rank);
  for (size_t rank = 0; rank < servers_.size(); ++rank) {
    order_threads_.emplace_back([this, rank] {
      absl::Status status = FollowScheduler(*server_clients_[rank], *servers_[rank], &stopping_);
      if (!status.ok()) LOG(ERROR) << "server " << rank << ": " << status.message();
    });
  }
  std::vector<std::unique_ptr<SchedulerClient>> workers_by_rank(worker_clients_.size());
  for (auto& client : worker_clients_) workers_by_rank[client->rank()] = std::move(client);
  worker_clients_ = std::move(workers_by_rank);
  KVWorkerOptions worker_options;
  worker_options.cluster_id = options_.cluster_id;
  worker_options.curve = options_.curve;
  worker_options.request_timeout = options_.request_timeout;
  worker_options.max_channels = options_.max_channels;
  worker_options.on_encoded_keys = options_.on_encoded_keys;
  for (auto& client : worker_clients_) {
    workers_.push_back(std::make_unique<KVWorker>(&context_, client->view(), worker_options));
    absl::Status status = workers_.back()->Start();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status InProcessCluster::WaitForSchedulerExit(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!scheduler_exited_ && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  if (!scheduler_exited_) return absl::DeadlineExceededError("scheduler still running");
  scheduler_thread_.join();
  return scheduler_status_;
}

void InProcessCluster::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  for (std::thread& thread : order_threads_) thread.join();
  if (scheduler_ != nullptr) scheduler_->RequestStop();
  if (scheduler_thread_.joinable()) scheduler_thread_.join();
  workers_.clear();
  for (auto& server : servers_) {
    if (server != nullptr) server->Stop();
  }
  worker_clients_.clear();
  server_clients_.clear();
  servers_.clear();
  if (owns_data_dir_) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

proto::ClusterConfig SgdTablesConfig(const std::vector<std::pair<std::string, int>>& tables,
                                     float lr) {
  proto::ClusterConfig config;
  for (const auto& [name, dim] : tables) {
    proto::TableConfig* table = config.add_tables();
    table->set_name(name);
    table->set_dim(dim);
    table->mutable_optimizer()->mutable_sgd()->set_learning_rate(lr);
  }
  return config;
}

}  // namespace granary
