// FileWorker: the scheduler's one background thread for slow file work (removing old
// checkpoints, publishing a closed day), so that the event loop never waits on a disk and keeps
// answering heartbeats while a large folder is deleted from a slow one.
//
// Work runs one item at a time, in the order posted (a publish posted after a prune runs after
// it). When an item ended, its `done` callback runs on the thread that calls RunFinished(): the
// event loop, once per round, so the components see the outcome on their own thread.
//
//   FileWorker files;
//   files.Post("pruning checkpoints", [store] { return store.Prune(2).status(); },
//              [](const absl::Status& status) { ... });  // on the loop, via RunFinished()
//
// A work item runs on the background thread: it must capture what it uses by value (never a
// component of the scheduler); `done` may use the components, as it runs on the loop.
//
// Thread-compatible: one thread (the event loop) calls it; the work runs on its own thread.
#ifndef GRANARY_SCHEDULER_FILE_WORKER_H_
#define GRANARY_SCHEDULER_FILE_WORKER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace granary {

class FileWorker {
 public:
  using Work = std::function<absl::Status()>;
  using Done = std::function<void(const absl::Status&)>;

  // Starts the background thread.
  FileWorker();
  // Stop(absl::ZeroDuration()) unless stopped already.
  ~FileWorker();
  FileWorker(const FileWorker&) = delete;
  FileWorker& operator=(const FileWorker&) = delete;

  // Queues `work`, described by `what` (for the logs). `done` (may be empty) gets its status
  // through RunFinished(). After Stop the work is dropped and `done` never runs.
  void Post(std::string what, Work work, Done done);

  // Runs the `done` callbacks of the work that ended since the last call, on the caller's
  // thread, in the order the work ended. Never blocks on work under way. Returns how many ran.
  int RunFinished();

  // Whether work is queued or under way.
  bool busy() const;

  // Takes no more work and waits up to `deadline` for the queued work to end, then joins the
  // thread. Returns true if all of it ended; otherwise logs what is left, lets the thread finish
  // its current item alone (detached; queued items are dropped) and returns false. `done`
  // callbacks not yet run are dropped either way.
  bool Stop(absl::Duration deadline);

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the thread, which may outlive this object
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace granary

#endif  // GRANARY_SCHEDULER_FILE_WORKER_H_
