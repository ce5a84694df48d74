// ServeHandlers: granary_serve's HTTP endpoints (docs/operations.md "Serving"), JSON bodies in
// Protobuf's mapping of common/proto/serve.proto:
//
//   POST /score    ScoreRequest -> ScoreResponse (the served version and every task's scores)
//   POST /topk     TopKRequest -> TopKResponse (retrieval models: the k best items by exact
//                  search over the served day's exported item vectors)
//   POST /popularity  ScoreRequest -> PopularityResponse (atnn: the predicted popularity of the
//                  candidates as new items, worker/serve/popularity.h)
//   GET  /healthz  HealthResponse: "ok", the served version, the last refused delta
//   GET  /version  ModelVersion
//
// A bad request gets 400 with an ErrorResponse naming the problem; a body over the server's
// payload limit 413, an unknown path 404, a failure of the server itself 500, each with an
// ErrorResponse. No request stops the server.
//
// Thread-safe: the handlers run on the HTTP server's threads at once.
#ifndef GRANARY_WORKER_SERVE_HTTP_HANDLERS_H_
#define GRANARY_WORKER_SERVE_HTTP_HANDLERS_H_

#include <cstddef>

#include "common/model_bundle.h"
#include "worker/serve/delta_poller.h"
#include "worker/serve/item_vectors.h"
#include "worker/serve/popularity.h"
#include "worker/serve/score_request.h"
#include "worker/serve/scorer.h"

namespace httplib {
class Server;
}

namespace granary {

// Default of granary_serve's --max_body_bytes: 1 MiB holds ~10,000 candidates of a few short
// columns.
inline constexpr size_t kDefaultMaxBodyBytes = size_t{1} << 20;

class ServeHandlers {
 public:
  // Every pointer must outlive the handlers; `poller` may be null (no polling).
  ServeHandlers(const ModelBundle* bundle, Scorer* scorer, const ScoreRequestParser* parser,
                const DeltaPoller* poller, ItemVectorStore* item_vectors, size_t max_body_bytes)
      : bundle_(bundle),
        scorer_(scorer),
        parser_(parser),
        poller_(poller),
        item_vectors_(item_vectors),
        max_body_bytes_(max_body_bytes) {}

  // Registers the endpoints and the error bodies on `server`, and sets its payload limit.
  void Register(httplib::Server* server) const;

 private:
  const ModelBundle* const bundle_;
  Scorer* const scorer_;
  const ScoreRequestParser* const parser_;
  const DeltaPoller* const poller_;
  ItemVectorStore* const item_vectors_;
  const size_t max_body_bytes_;
  mutable NewItemPopularity popularity_;  // thread-safe; caches the mean, so const handlers fill it
};

}  // namespace granary

#endif  // GRANARY_WORKER_SERVE_HTTP_HANDLERS_H_
