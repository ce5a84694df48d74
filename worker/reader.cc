#include "worker/reader.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "glog/logging.h"
#include "worker/batch_parser.h"
#include "worker/bounded_call.h"
#include "worker/line_source.h"

namespace granary {
namespace {

// The bound on every wait for input: the config's read_timeout_seconds, or its default.
absl::Duration ReadTimeout(const proto::DatasetConfig& config) {
  return absl::Seconds(config.has_read_timeout_seconds() ? config.read_timeout_seconds()
                                                         : kDefaultReadTimeoutSeconds);
}

// Everything the prefetch thread touches, shared between it and the PrefetchReader: a thread
// stuck in a read that never returns is abandoned by the destructor (detached) and keeps its
// state alive until the read returns, so destroying a Reader never hangs and never frees what
// the thread still uses.
class Prefetch {
 public:
  // REQUIRES: `config` and `options` valid.
  Prefetch(const proto::DatasetConfig& config, std::vector<InputSlice> slices,
           const ReaderOptions& options);

  // The prefetch thread: reads every slice, publishes batches, records the final status.
  void Run();
  bool Next(Batch* batch);
  absl::Status status() const;
  ReaderStats stats() const;
  // Asks the thread to stop and waits up to `wait` for it to leave Run. Returns whether it did.
  bool Stop(absl::Duration wait);
  // Where the thread reads, for logs: "<file>:<line last read>" or "<file>".
  std::string Where() const;

 private:
  // Reads one slice into *batch, publishing full batches. Returns the error that stops reading.
  absl::Status ReadSlice(const InputSlice& slice, Batch* batch);
  // Hands a full or final batch to the queue, waiting while it holds prefetch_batches.
  // Returns false if the reader is being destroyed or timed out.
  bool Publish(Batch* batch);
  void RecordBadLine(const std::string& name, uint64_t line_number, const std::string& reason);
  void Finish(absl::Status status);
  // The DeadlineExceeded of a Next that waited read_timeout: where the thread is stuck.
  // REQUIRES: mutex_ held.
  absl::Status TimedOut() const;

  const BatchParser parser_;
  const std::vector<InputSlice> slices_;
  const ReaderOptions options_;
  const double max_bad_line_fraction_;
  const uint64_t min_lines_before_abort_;
  const uint64_t max_line_bytes_;
  const absl::Duration read_timeout_;

  // Owned by the prefetch thread; published into stats_ by Publish and Finish.
  uint64_t lines_ = 0;
  uint64_t bad_lines_ = 0;
  uint64_t samples_ = 0;
  uint64_t files_done_ = 0;
  uint64_t skipped_lines_ = 0;
  std::string first_bad_line_;  // as logged, for error messages
  // Where the thread reads, for TimedOut: the slice (index into slices_, or -1 before the
  // first), whether its file is open and its header read, and the line last read and the byte
  // after it. Stored by the thread without the lock (relaxed: approximate is fine for an error
  // message).
  std::atomic<int64_t> at_slice_ = -1;
  std::atomic<bool> opened_ = false;
  std::atomic<bool> past_header_ = false;
  std::atomic<uint64_t> at_line_ = 0;
  std::atomic<uint64_t> at_byte_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable batch_ready_;  // queue_ gained a batch, or finished_
  std::condition_variable space_ready_;  // queue_ lost a batch, or stopping_
  std::condition_variable exited_;       // exited_run_
  std::deque<Batch> queue_;
  bool finished_ = false;    // the prefetch thread published its last batch
  bool timed_out_ = false;   // a Next waited read_timeout: status_ says where; no more batches
  bool exited_run_ = false;  // the prefetch thread left Run
  // The destructor runs or a Next timed out. Written under mutex_ (for the condition
  // variables); the prefetch thread also polls it without the lock between lines.
  std::atomic<bool> stopping_ = false;
  absl::Status status_;
  ReaderStats stats_;
};

// The Reader: owns the prefetch thread, which shares the Prefetch.
class PrefetchReader final : public Reader {
 public:
  PrefetchReader(const proto::DatasetConfig& config, std::vector<InputSlice> slices,
                 const ReaderOptions& options)
      : prefetch_(std::make_shared<Prefetch>(config, std::move(slices), options)),
        thread_([prefetch = prefetch_] { prefetch->Run(); }) {}
  ~PrefetchReader() override;

  bool Next(Batch* batch) override { return prefetch_->Next(batch); }
  absl::Status status() const override { return prefetch_->status(); }
  ReaderStats stats() const override { return prefetch_->stats(); }

 private:
  const std::shared_ptr<Prefetch> prefetch_;
  std::thread thread_;
};

PrefetchReader::~PrefetchReader() {
  if (prefetch_->Stop(kReaderStopWait)) {
    thread_.join();
    return;
  }
  LOG(WARNING) << "reader: abandoning its prefetch thread, stuck for more than "
               << absl::FormatDuration(kReaderStopWait) << " in reading " << prefetch_->Where()
               << " (it ends when its read returns)";
  thread_.detach();
}

Prefetch::Prefetch(const proto::DatasetConfig& config, std::vector<InputSlice> slices,
                   const ReaderOptions& options)
    : parser_(config, options.batch_size, options.label_domains),
      slices_(std::move(slices)),
      options_(options),
      max_bad_line_fraction_(config.has_max_bad_line_fraction() ? config.max_bad_line_fraction()
                                                                : kDefaultMaxBadLineFraction),
      min_lines_before_abort_(config.has_min_lines_before_abort() ? config.min_lines_before_abort()
                                                                  : kDefaultMinLinesBeforeAbort),
      max_line_bytes_(config.has_max_line_bytes() ? config.max_line_bytes() : kDefaultMaxLineBytes),
      read_timeout_(ReadTimeout(config)) {}

bool Prefetch::Stop(absl::Duration wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  space_ready_.notify_all();
  return exited_.wait_for(lock, absl::ToChronoNanoseconds(wait), [this] { return exited_run_; });
}

bool Prefetch::Next(Batch* batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  const bool ready = batch_ready_.wait_for(lock, absl::ToChronoNanoseconds(read_timeout_), [this] {
    return !queue_.empty() || finished_ || timed_out_;
  });
  if (!ready) {
    // Nothing came within the bound: the input is stuck (e.g. a hung network mount). The
    // thread stops at its next line, if its read ever returns.
    timed_out_ = true;
    stopping_ = true;
    status_ = TimedOut();
    LOG(ERROR) << "reader: " << status_.message();
    lock.unlock();
    space_ready_.notify_all();
    batch_ready_.notify_all();
    return false;
  }
  if (queue_.empty()) return false;
  Batch taken = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  space_ready_.notify_one();
  *batch = std::move(taken);  // frees the caller's previous batch outside the lock
  return true;
}

absl::Status Prefetch::TimedOut() const {
  const int64_t slice = at_slice_.load(std::memory_order_relaxed);
  const std::string bound =
      absl::StrCat("no batch within read_timeout_seconds ", absl::ToDoubleSeconds(read_timeout_));
  if (slice < 0) return absl::DeadlineExceededError(absl::StrCat("input: ", bound));
  const std::string name = slices_[slice].Name();
  const uint64_t line = at_line_.load(std::memory_order_relaxed);
  if (!opened_.load(std::memory_order_relaxed)) {
    // open() itself blocks: a hung network mount, a FIFO no one opened for writing.
    return absl::DeadlineExceededError(absl::StrCat("input ", name, " did not open within ",
                                                    "read_timeout_seconds ",
                                                    absl::ToDoubleSeconds(read_timeout_)));
  }
  if (!past_header_.load(std::memory_order_relaxed)) {
    return absl::DeadlineExceededError(
        absl::StrCat(name, ": ", bound, "; reading its header is stuck"));
  }
  if (line == 0) {  // a partial slice, before its first line
    return absl::DeadlineExceededError(absl::StrCat(name, ": ", bound,
                                                    "; reading its first line is stuck (byte ",
                                                    at_byte_.load(std::memory_order_relaxed), ")"));
  }
  return absl::DeadlineExceededError(absl::StrCat(name, ":", line, ": ", bound,
                                                  "; reading is stuck after this line (byte ",
                                                  at_byte_.load(std::memory_order_relaxed), ")"));
}

std::string Prefetch::Where() const {
  const int64_t slice = at_slice_.load(std::memory_order_relaxed);
  if (slice < 0) return "its input";
  const uint64_t line = at_line_.load(std::memory_order_relaxed);
  return line == 0 ? slices_[slice].Name() : absl::StrCat(slices_[slice].Name(), ":", line);
}

absl::Status Prefetch::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

ReaderStats Prefetch::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void Prefetch::Run() {
  Batch batch = parser_.NewBatch();
  absl::Status status;
  for (size_t i = 0; i < slices_.size(); ++i) {
    opened_.store(false, std::memory_order_relaxed);
    past_header_.store(false, std::memory_order_relaxed);
    at_slice_.store(static_cast<int64_t>(i), std::memory_order_relaxed);
    status = ReadSlice(slices_[i], &batch);
    if (!status.ok()) break;
    ++files_done_;
  }
  if (status.ok() && samples_ == 0 && bad_lines_ > 0) {
    status = absl::DataLossError(absl::StrCat(
        "no good line in ", slices_.size(), " input file(s) (first ", slices_.front().Name(),
        "): all ", bad_lines_, " data lines are bad; first: ", first_bad_line_));
  }
  // Samples parsed before an error are still delivered.
  if (batch.size > 0 && !absl::IsCancelled(status)) Publish(&batch);
  Finish(std::move(status));
}

absl::Status Prefetch::ReadSlice(const InputSlice& slice, Batch* batch) {
  // Bad lines of a partial slice are numbered from its start: "<path> bytes B..E:<n>".
  const std::string name = slice.Name();
  absl::StatusOr<LineSource> source = LineSource::Open(slice.path, max_line_bytes_);
  if (!source.ok()) return source.status();
  opened_.store(true, std::memory_order_relaxed);
  std::string_view line;
  if (!source->NextLine(&line)) {
    if (!source->status().ok()) return source->status();
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty file, no header line"));
  }
  if (source->line_too_long()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":1: header line longer than max_line_bytes ", max_line_bytes_));
  }
  absl::StatusOr<BatchParser::Layout> layout = parser_.MatchHeader(line, name);
  if (!layout.ok()) return layout.status();
  if (slice.begin > source->next_line_offset()) {
    absl::Status status = source->SkipToLineAt(slice.begin);
    if (!status.ok()) return status;
  }
  for (uint64_t skipped = 0; skipped < slice.skip_lines; ++skipped) {
    if ((slice.end != 0 && source->next_line_offset() >= slice.end) || !source->NextLine(&line)) {
      break;
    }
    if (stopping_.load(std::memory_order_relaxed)) return absl::CancelledError("reader destroyed");
    ++skipped_lines_;
  }
  at_line_.store(source->line_number(), std::memory_order_relaxed);
  at_byte_.store(source->next_line_offset(), std::memory_order_relaxed);
  past_header_.store(true, std::memory_order_relaxed);
  std::string reason;
  while ((slice.end == 0 || source->next_line_offset() < slice.end) && source->NextLine(&line)) {
    if (stopping_.load(std::memory_order_relaxed)) return absl::CancelledError("reader stopped");
    at_line_.store(source->line_number(), std::memory_order_relaxed);
    at_byte_.store(source->next_line_offset(), std::memory_order_relaxed);
    ++lines_;
    bool good = false;
    if (source->line_too_long()) {
      reason = absl::StrCat("line longer than max_line_bytes ", max_line_bytes_, " (skipped)");
    } else {
      good = parser_.ParseLine(line, &*layout, batch, &reason);
    }
    if (good) {
      ++samples_;
      if (batch->size == options_.batch_size && !Publish(batch)) {
        return absl::CancelledError("reader stopped");
      }
    } else {
      ++bad_lines_;
      RecordBadLine(name, source->line_number(), reason);
    }
    if (bad_lines_ > 0 && lines_ > min_lines_before_abort_ &&
        static_cast<double>(bad_lines_) > max_bad_line_fraction_ * static_cast<double>(lines_)) {
      return absl::DataLossError(absl::StrCat(
          name, ":", source->line_number(), ": too many bad lines: ", bad_lines_, " of ", lines_,
          " data lines read (", 100.0 * bad_lines_ / lines_, "%) exceed max_bad_line_fraction ",
          max_bad_line_fraction_, " (checked after min_lines_before_abort ",
          min_lines_before_abort_, " lines); first: ", first_bad_line_));
    }
  }
  return source->status();
}

bool Prefetch::Publish(Batch* batch) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    space_ready_.wait(lock, [this] {
      return stopping_ || queue_.size() < static_cast<size_t>(options_.prefetch_batches);
    });
    if (stopping_) return false;
    batch->lines_consumed = skipped_lines_ + lines_;
    queue_.push_back(std::move(*batch));
    ++stats_.batches_produced;
    stats_.lines = lines_;
    stats_.bad_lines = bad_lines_;
    stats_.samples = samples_;
    stats_.files_done = files_done_;
    stats_.skipped_lines = skipped_lines_;
  }
  batch_ready_.notify_one();
  *batch = parser_.NewBatch();
  return true;
}

void Prefetch::RecordBadLine(const std::string& name, uint64_t line_number,
                             const std::string& reason) {
  if (bad_lines_ > kLoggedBadLines && bad_lines_ % kBadLineLogInterval != 0) return;
  std::string message = absl::StrCat(name, ":", line_number, ": ", reason);
  if (bad_lines_ <= kLoggedBadLines) {
    LOG(WARNING) << message
                 << (bad_lines_ == kLoggedBadLines
                         ? absl::StrCat(" (from now on only every ", kBadLineLogInterval,
                                        "th bad line is logged)")
                         : "");
    if (bad_lines_ == 1) first_bad_line_ = message;
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.first_bad_lines.push_back(std::move(message));
  } else {
    LOG(WARNING) << message << " (bad line " << bad_lines_ << " of " << lines_ << " read)";
  }
}

void Prefetch::Finish(absl::Status status) {
  LOG(INFO) << "reader: read " << files_done_ << " of " << slices_.size() << " files, " << lines_
            << " data lines, " << bad_lines_ << " bad: " << status;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!timed_out_) status_ = std::move(status);  // else it says where reading was stuck
    stats_.lines = lines_;
    stats_.bad_lines = bad_lines_;
    stats_.samples = samples_;
    stats_.files_done = files_done_;
    stats_.skipped_lines = skipped_lines_;
    finished_ = true;
    exited_run_ = true;
  }
  batch_ready_.notify_all();
  exited_.notify_all();
}

}  // namespace

std::string InputSlice::Name() const {
  return whole_file() ? path
                      : absl::StrCat(path, " bytes ", begin, "..", end == 0 ? "end" : "",
                                     end == 0 ? "" : absl::StrCat(end));
}

absl::StatusOr<std::unique_ptr<Reader>> Reader::Open(const proto::DatasetConfig& config,
                                                     std::vector<std::string> files,
                                                     const ReaderOptions& options) {
  std::vector<InputSlice> slices;
  for (std::string& path : files) slices.push_back(InputSlice{std::move(path)});
  return Open(config, std::move(slices), options);
}

absl::StatusOr<std::unique_ptr<Reader>> Reader::Open(const proto::DatasetConfig& config,
                                                     std::vector<InputSlice> slices,
                                                     const ReaderOptions& options) {
  absl::Status status = ValidateDatasetConfig(config, "dataset config", nullptr);
  if (!status.ok()) return status;
  status = BatchParser::CheckLabelDomains(config, options.label_domains);
  if (!status.ok()) return status;
  if (options.batch_size < 1 || options.prefetch_batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat("reader needs batch_size >= 1 (got ",
                                                   options.batch_size, ") and prefetch_batches",
                                                   " >= 1 (got ", options.prefetch_batches, ")"));
  }
  const absl::Duration read_timeout = ReadTimeout(config);
  for (const InputSlice& slice : slices) {
    // stat() on a hung network mount blocks in the kernel: bounded like every read of input.
    status = CallWithDeadline(
        [path = slice.path] {
          std::error_code error;
          if (!std::filesystem::exists(path, error)) {
            return absl::NotFoundError(absl::StrCat(path, ": no such input file"));
          }
          if (std::filesystem::is_directory(path, error)) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": input is a directory, not a file"));
          }
          return absl::OkStatus();
        },
        read_timeout,
        absl::StrCat("input ", slice.path, " did not answer whether it exists within ",
                     "read_timeout_seconds ", absl::ToDoubleSeconds(read_timeout)));
    if (!status.ok()) return status;
  }
  return std::make_unique<PrefetchReader>(config, std::move(slices), options);
}

}  // namespace granary
