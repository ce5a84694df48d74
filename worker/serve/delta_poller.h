// DeltaPoller: a thread that applies the days closed since the served version
// (ModelBundle::ApplyNewDeltas) every poll interval, so that a serving process follows daily
// training without a restart. Requests keep reading the version they took while a day is
// applied. A refused delta is logged (once per distinct error) and kept as last_error(); the
// next poll tries again, so a day re-closed whole is picked up.
//
// Thread-safe.
#ifndef GRANARY_WORKER_SERVE_DELTA_POLLER_H_
#define GRANARY_WORKER_SERVE_DELTA_POLLER_H_

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "common/model_bundle.h"

namespace granary {

// Default of granary_serve's --poll_seconds.
inline constexpr double kDefaultPollSeconds = 10.0;

class DeltaPoller {
 public:
  // Starts polling `bundle` (which must outlive the poller) every `interval` (> 0), the first
  // time at once.
  DeltaPoller(ModelBundle* bundle, absl::Duration interval);
  // Stops the thread (waiting for a day being applied).
  ~DeltaPoller();
  DeltaPoller(const DeltaPoller&) = delete;
  DeltaPoller& operator=(const DeltaPoller&) = delete;

  // The error of the last poll, or "" if it applied every closed day.
  std::string last_error() const;

 private:
  void Run();

  ModelBundle* const bundle_;
  const absl::Duration interval_;
  mutable std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stopping_ = false;   // guarded by mutex_
  std::string last_error_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_SERVE_DELTA_POLLER_H_
