// HttpServing: granary_serve's request path in this process, for serve_bench's HTTP mode: the
// handlers of worker/serve/ (ServeHandlers, Scorer, ScoreRequestParser) over a ModelBundle made
// in memory, on an httplib::Server bound to 127.0.0.1 on a free port with one handler thread,
// and one keep-alive httplib::Client sending one request at a time.
//
// Every thread it starts (httplib's accept loop and its handler thread) inherits the caller's
// CPU affinity: pinned to one CPU, client and server share that core.
//
// Not thread-safe: Post from one thread at a time.
#ifndef GRANARY_TESTS_BENCH_HTTP_SERVING_H_
#define GRANARY_TESTS_BENCH_HTTP_SERVING_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_bundle.h"
#include "worker/job_config.h"

namespace granary {

class HttpServing {
 public:
  // Serves `spec`'s model over `tables` (version "bench"). The error of Scorer::Create or
  // ModelBundle::InMemory, or Unavailable if no port on 127.0.0.1 can be bound.
  static absl::StatusOr<std::unique_ptr<HttpServing>> Start(
      const JobSpec& spec, const std::vector<ModelBundle::InMemoryTable>& tables);
  // Stops the server and joins its thread.
  ~HttpServing();
  HttpServing(const HttpServing&) = delete;
  HttpServing& operator=(const HttpServing&) = delete;

  // POST /score with the JSON `body`: the response body, or Unavailable naming the transport
  // error, or Internal with the status and body of an answer other than 200.
  absl::StatusOr<std::string> Score(const std::string& body);

 private:
  struct State;
  explicit HttpServing(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace granary

#endif  // GRANARY_TESTS_BENCH_HTTP_SERVING_H_
