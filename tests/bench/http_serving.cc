#include "tests/bench/http_serving.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "worker/serve/http_handlers.h"

namespace granary {
namespace {

constexpr char kHost[] = "127.0.0.1";
// httplib's handler threads: one, for the one-core figure.
constexpr size_t kHandlerThreads = 1;
// The client's connect, read and write deadlines; a 1,000-candidate request takes ~10 ms.
constexpr int kTimeoutSeconds = 10;
constexpr int kHttpOk = 200;

}  // namespace

struct HttpServing::State {
  std::unique_ptr<ModelBundle> bundle;
  std::unique_ptr<Scorer> scorer;
  std::unique_ptr<ScoreRequestParser> parser;
  std::unique_ptr<ItemVectorStore> item_vectors;  // empty: the bench sends no /topk
  std::unique_ptr<ServeHandlers> handlers;
  httplib::Server server;
  std::thread listener;
  std::unique_ptr<httplib::Client> client;
};

absl::StatusOr<std::unique_ptr<HttpServing>> HttpServing::Start(
    const JobSpec& spec, const std::vector<ModelBundle::InMemoryTable>& tables) {
  auto state = std::make_unique<State>();
  absl::StatusOr<std::unique_ptr<ModelBundle>> bundle =
      ModelBundle::InMemory(ServedVersion{"bench", ""}, tables);
  if (!bundle.ok()) return bundle.status();
  state->bundle = *std::move(bundle);
  absl::StatusOr<std::unique_ptr<Scorer>> scorer = Scorer::Create(spec);
  if (!scorer.ok()) return scorer.status();
  state->scorer = *std::move(scorer);
  state->parser = std::make_unique<ScoreRequestParser>(spec.dataset, kDefaultMaxCandidates);
  state->item_vectors = std::make_unique<ItemVectorStore>("");
  state->handlers = std::make_unique<ServeHandlers>(
      state->bundle.get(), state->scorer.get(), state->parser.get(), /*poller=*/nullptr,
      state->item_vectors.get(), kDefaultMaxBodyBytes);
  state->handlers->Register(&state->server);
  // Without it, Nagle's algorithm holds a response's last segment for the client's delayed
  // ACK: ~40 ms per request.
  state->server.set_tcp_nodelay(true);
  state->server.new_task_queue = [] { return new httplib::ThreadPool(kHandlerThreads); };
  const int port = state->server.bind_to_any_port(kHost);
  if (port <= 0) return absl::UnavailableError(absl::StrCat("cannot bind a port on ", kHost));
  // Bound and listening: the client's connections queue until the accept loop runs.
  httplib::Server* server = &state->server;
  state->listener = std::thread([server] { server->listen_after_bind(); });
  state->client = std::make_unique<httplib::Client>(kHost, port);
  state->client->set_keep_alive(true);
  state->client->set_tcp_nodelay(true);
  state->client->set_connection_timeout(kTimeoutSeconds);
  state->client->set_read_timeout(kTimeoutSeconds);
  state->client->set_write_timeout(kTimeoutSeconds);
  return std::unique_ptr<HttpServing>(new HttpServing(std::move(state)));
}

HttpServing::HttpServing(std::unique_ptr<State> state) : state_(std::move(state)) {}

HttpServing::~HttpServing() {
  state_->client->stop();
  state_->server.stop();
  state_->listener.join();
}

absl::StatusOr<std::string> HttpServing::Score(const std::string& body) {
  httplib::Result result = state_->client->Post("/score", body, "application/json");
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("POST /score: ", httplib::to_string(result.error())));
  }
  if (result->status != kHttpOk) {
    return absl::InternalError(absl::StrCat("POST /score: ", result->status, " ", result->body));
  }
  return std::move(result->body);
}

}  // namespace granary
