// CallWithDeadline: a bound on a call that may never return, such as a file-system call on a
// hung network mount (stat and open block in the kernel and cannot be interrupted).
//
//   absl::Status status = CallWithDeadline([path] { return CheckInput(path); },
//                                          absl::Seconds(600), "input " + path + " ...");
//
// The call runs on a thread of its own. If it has not returned by the deadline, the caller gets
// DeadlineExceeded and goes on; the thread is left to end whenever the call does, so the call
// must own everything it touches (capture by value). A thread per call: for calls per file,
// never per line or row.
//
// Thread-safe: keeps no state between calls.
#ifndef GRANARY_WORKER_BOUNDED_CALL_H_
#define GRANARY_WORKER_BOUNDED_CALL_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace granary {

// Runs `call` and waits up to `deadline` for it. Returns what it returned, DeadlineExceeded
// with `timeout_message` if it did not return in time, or Unavailable if no thread could be
// started for it.
absl::Status CallWithDeadline(absl::AnyInvocable<absl::Status() &&> call, absl::Duration deadline,
                              const std::string& timeout_message);

}  // namespace granary

#endif  // GRANARY_WORKER_BOUNDED_CALL_H_
