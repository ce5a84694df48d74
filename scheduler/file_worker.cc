#include "scheduler/file_worker.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "glog/logging.h"

namespace granary {

struct FileWorker::State {
  struct Item {
    std::string what;
    Work work;
    Done done;
  };
  struct Ended {
    Done done;
    absl::Status status;
  };

  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Item> queue;   // guarded by mutex
  std::deque<Ended> ended;  // guarded by mutex
  std::string current;      // what runs now; guarded by mutex
  bool running = false;     // an item is under way; guarded by mutex
  bool stopping = false;    // no more work is taken; guarded by mutex
  bool abandoned = false;   // Stop gave up: drop what is queued; guarded by mutex

  void Loop() {
    std::unique_lock<std::mutex> lock(mutex);
    while (true) {
      changed.wait(lock, [this] { return !queue.empty() || stopping; });
      if (abandoned || queue.empty()) return;  // stopping with nothing (more) to do
      Item item = std::move(queue.front());
      queue.pop_front();
      running = true;
      current = item.what;
      lock.unlock();
      const absl::Time start = absl::Now();
      absl::Status status = item.work();
      VLOG(1) << item.what << " took " << absl::FormatDuration(absl::Now() - start);
      lock.lock();
      running = false;
      current.clear();
      if (item.done) ended.push_back(Ended{std::move(item.done), std::move(status)});
      changed.notify_all();
    }
  }
};

FileWorker::FileWorker() : state_(std::make_shared<State>()) {
  thread_ = std::thread([state = state_] { state->Loop(); });
}

FileWorker::~FileWorker() {
  if (!stopped_) Stop(absl::ZeroDuration());
}

void FileWorker::Post(std::string what, Work work, Done done) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->stopping) {
    LOG(ERROR) << "file work '" << what << "' posted after the stop: dropped";
    return;
  }
  state_->queue.push_back(State::Item{std::move(what), std::move(work), std::move(done)});
  state_->changed.notify_all();
}

int FileWorker::RunFinished() {
  std::deque<State::Ended> ended;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    ended.swap(state_->ended);
  }
  for (State::Ended& item : ended) item.done(item.status);
  return static_cast<int>(ended.size());
}

bool FileWorker::busy() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->running || !state_->queue.empty();
}

bool FileWorker::Stop(absl::Duration deadline) {
  if (stopped_) return true;
  stopped_ = true;
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->stopping = true;
  state_->changed.notify_all();
  const bool finished =
      state_->changed.wait_for(lock, absl::ToChronoMilliseconds(deadline),
                               [this] { return !state_->running && state_->queue.empty(); });
  if (!finished) {
    LOG(ERROR) << "file work still under way after " << absl::FormatDuration(deadline) << ": '"
               << state_->current << "' (left to finish alone), " << state_->queue.size()
               << " more item(s) dropped";
    state_->abandoned = true;
    state_->queue.clear();
  }
  state_->ended.clear();
  lock.unlock();
  if (finished) {
    thread_.join();
  } else {
    thread_.detach();
  }
  return finished;
}

}  // namespace granary
