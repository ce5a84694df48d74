#include "worker/serve/delta_poller.h"

#include <chrono>

#include "glog/logging.h"

namespace granary {

DeltaPoller::DeltaPoller(ModelBundle* bundle, absl::Duration interval)
    : bundle_(bundle), interval_(interval), thread_([this] { Run(); }) {}

DeltaPoller::~DeltaPoller() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_requested_.notify_all();
  thread_.join();
}

std::string DeltaPoller::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

void DeltaPoller::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    absl::StatusOr<int> applied = bundle_->ApplyNewDeltas();
    const std::string error = applied.ok() ? "" : std::string(applied.status().message());
    lock.lock();
    if (!error.empty() && error != last_error_) {
      LOG(ERROR) << "refused a delta; still serving day " << bundle_->Current()->version().day()
                 << ": " << error;
    }
    last_error_ = error;
    stop_requested_.wait_for(lock, absl::ToChronoNanoseconds(interval_),
                             [this] { return stopping_; });
  }
}

}  // namespace granary
