#include "worker/bounded_call.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace granary {
namespace {

// Shared by the caller and the thread, which may outlive it.
struct CallResult {
  std::mutex mutex;
  std::condition_variable returned;
  bool done = false;
  absl::Status status;
};

}  // namespace

absl::Status CallWithDeadline(absl::AnyInvocable<absl::Status() &&> call, absl::Duration deadline,
                              const std::string& timeout_message) {
  auto result = std::make_shared<CallResult>();
  try {
    // Detached at once: the caller never joins, whether the call returns in time or not.
    std::thread([result, call = std::move(call)]() mutable {
      absl::Status status = std::move(call)();
      std::lock_guard<std::mutex> lock(result->mutex);
      result->status = std::move(status);
      result->done = true;
      result->returned.notify_all();
    }).detach();
  } catch (const std::system_error& e) {
    return absl::UnavailableError(absl::StrCat("cannot start a thread for a bounded call (",
                                               e.what(), "): ", timeout_message));
  }
  std::unique_lock<std::mutex> lock(result->mutex);
  if (!result->returned.wait_for(lock, absl::ToChronoNanoseconds(deadline),
                                 [&result] { return result->done; })) {
    return absl::DeadlineExceededError(timeout_message);
  }
  return result->status;
}

}  // namespace granary
