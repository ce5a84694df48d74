#include "worker/batch_source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace granary {
namespace {

bool IsGzip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  return in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

}  // namespace

StripedBatchSource::StripedBatchSource(std::unique_ptr<Reader> reader, int rank, int num_workers)
    : reader_(std::move(reader)), rank_(rank), num_workers_(num_workers) {}

BatchSource::Take StripedBatchSource::Next(Batch* batch, int64_t* ticket, bool) {
  absl::MutexLock lock(&mutex_);
  while (!stopped_ && reader_->Next(batch)) {
    if (index_++ % num_workers_ == rank_) {
      *ticket = index_ - 1;
      return Take::kBatch;
    }
  }
  return Take::kEnd;
}

void StripedBatchSource::Stop() {
  absl::MutexLock lock(&mutex_);
  stopped_ = true;
}

absl::StatusOr<proto::WorkQueueSpec> MakeWorkQueueSpec(const std::string& name,
                                                       const std::vector<std::string>& files,
                                                       uint64_t chunk_bytes) {
  proto::WorkQueueSpec spec;
  spec.set_name(name);
  auto add = [&spec](const std::string& file, uint64_t begin, uint64_t end) {
    proto::Chunk* chunk = spec.add_chunks();
    chunk->set_id(spec.chunks_size() - 1);
    chunk->set_file(file);
    chunk->set_begin(begin);
    chunk->set_end(end);
  };
  for (const std::string& file : files) {
    std::error_code error;
    const uint64_t size = std::filesystem::file_size(file, error);
    if (error) {
      return absl::NotFoundError(absl::StrCat(file, ": cannot size input file: ", error.message()));
    }
    if (chunk_bytes == 0 || size <= chunk_bytes || IsGzip(file)) {
      add(file, 0, 0);
      continue;
    }
    for (uint64_t begin = 0; begin < size; begin += chunk_bytes) {
      add(file, begin, begin + chunk_bytes >= size ? 0 : begin + chunk_bytes);
    }
  }
  return spec;
}

absl::StatusOr<std::unique_ptr<QueueBatchSource>> QueueBatchSource::Open(
    SchedulerClient* scheduler, proto::WorkQueueSpec spec, const proto::DatasetConfig& dataset,
    const ReaderOptions& reader_options, absl::Duration wait_timeout, int max_batches_past_resume) {
  absl::Status opened = scheduler->OpenQueue(spec, wait_timeout);
  if (!opened.ok()) return opened;
  return std::unique_ptr<QueueBatchSource>(new QueueBatchSource(
      scheduler, spec.name(), dataset, reader_options, wait_timeout, max_batches_past_resume));
}

QueueBatchSource::QueueBatchSource(SchedulerClient* scheduler, std::string queue,
                                   const proto::DatasetConfig& dataset,
                                   const ReaderOptions& reader_options, absl::Duration wait_timeout,
                                   int max_batches_past_resume)
    : scheduler_(scheduler),
      queue_(std::move(queue)),
      dataset_(dataset),
      reader_options_(reader_options),
      wait_timeout_(wait_timeout),
      max_batches_past_resume_(static_cast<size_t>(std::max(0, max_batches_past_resume))) {}

BatchSource::Take QueueBatchSource::Next(Batch* batch, int64_t* ticket, bool may_wait) {
  absl::MutexLock lock(&mutex_);
  while (true) {
    if (stopped_ || !status_.ok()) return Take::kEnd;
    if (reading_.has_value()) {
      OpenChunk& chunk = chunks_[*reading_];
      if (max_batches_past_resume_ > 0 && chunk.taken.size() >= max_batches_past_resume_) {
        if (!may_wait) return Take::kMustWait;
        // Other threads hold the batch at the resume point; its Done makes room. A chunk read
        // to its end stops being reading_ before it can be erased.
        const uint64_t id = *reading_;
        const size_t taken = chunk.taken.size();
        struct Room {
          QueueBatchSource* self;
          uint64_t id;
        } room{this, id};
        const bool roomy = mutex_.AwaitWithTimeout(
            absl::Condition(
                +[](Room* room) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                  QueueBatchSource* self = room->self;
                  return self->stopped_ || self->reading_ != room->id ||
                         self->chunks_[room->id].taken.size() < self->max_batches_past_resume_;
                },
                &room),
            wait_timeout_);
        if (!roomy && status_.ok()) {
          status_ = absl::DeadlineExceededError(
              absl::StrCat("work queue '", queue_, "': chunk ", id, " has ", taken,
                           " batches taken past its resume point (max_batches_past_resume ",
                           max_batches_past_resume_, ") and the batch at it was not done within ",
                           absl::FormatDuration(wait_timeout_)));
          stopped_ = true;
        }
        continue;
      }
      if (chunk.reader->Next(batch)) {
        ++chunk.batches_out;
        if (chunk.taken.empty()) chunk.first_ticket = next_ticket_;
        chunk.taken.push_back(TakenBatch{batch->lines_consumed, batch->size, false});
        *ticket = next_ticket_++;
        scheduler_->ReportChunkProgress(ProgressOf(*reading_, chunk));
        return Take::kBatch;
      }
      absl::Status read = chunk.reader->status();
      if (!read.ok()) {
        status_ = read;
        stopped_ = true;
        return Take::kEnd;
      }
      const ReaderStats stats = chunk.reader->stats();
      chunk.lines_total = stats.skipped_lines + stats.lines;
      bad_lines_ += static_cast<int64_t>(stats.bad_lines);
      chunk.reader.reset();
      const uint64_t id = *reading_;
      reading_.reset();
      if (chunk.batches_out == 0) {
        chunk.lines_done = chunk.lines_total;
        const proto::ChunkProgress progress = ProgressOf(id, chunk);
        chunks_.erase(id);
        mutex_.Unlock();
        Finish(id, progress);
        mutex_.Lock();
      }
      continue;
    }
    if (drained_) return Take::kEnd;
    if (!may_wait) return Take::kMustWait;
    if (fetching_) {
      // Another thread asks the scheduler; Done and Finish go on meanwhile.
      mutex_.Await(absl::Condition(
          +[](QueueBatchSource* self)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mutex_) { return !self->fetching_; },
          this));
      continue;
    }
    // This thread fetches the next chunk, without holding mutex_.
    fetching_ = true;
    mutex_.Unlock();
    absl::StatusOr<std::optional<proto::Chunk>> chunk =
        scheduler_->NextChunk(queue_, wait_timeout_);
    absl::StatusOr<std::unique_ptr<Reader>> reader;
    if (chunk.ok() && chunk->has_value()) {
      const proto::Chunk& taken = **chunk;
      reader = Reader::Open(
          dataset_,
          std::vector<InputSlice>{{taken.file(), taken.begin(), taken.end(), taken.skip_lines()}},
          reader_options_);
    }
    mutex_.Lock();
    fetching_ = false;
    if (!chunk.ok() || (chunk->has_value() && !reader.ok())) {
      if (status_.ok()) status_ = chunk.ok() ? reader.status() : chunk.status();
      stopped_ = true;
      return Take::kEnd;
    }
    if (!chunk->has_value()) {
      drained_ = true;
      return Take::kEnd;
    }
    reading_ = (*chunk)->id();
    OpenChunk& opened = chunks_[*reading_];
    opened.reader = *std::move(reader);
    opened.lines_done = (*chunk)->skip_lines();
  }
}

void QueueBatchSource::Done(int64_t ticket) {
  uint64_t id = 0;
  proto::ChunkProgress progress;
  {
    absl::MutexLock lock(&mutex_);
    // A batch's chunk is one of the few open ones: the one whose taken batches hold its ticket.
    auto chunk = chunks_.begin();
    while (chunk != chunks_.end() && !(ticket >= chunk->second.first_ticket &&
                                       ticket - chunk->second.first_ticket <
                                           static_cast<int64_t>(chunk->second.taken.size()))) {
      ++chunk;
    }
    if (chunk == chunks_.end()) return;
    id = chunk->first;
    OpenChunk& open = chunk->second;
    open.taken[ticket - open.first_ticket].done = true;
    while (!open.taken.empty() && open.taken.front().done) {
      open.lines_done = open.taken.front().lines_consumed;
      open.samples_trained += open.taken.front().samples;
      open.taken.pop_front();
      ++open.first_ticket;
    }
    const bool finished = --open.batches_out == 0 && open.reader == nullptr;
    // Trailing bad lines after the last batch are consumed too.
    if (finished) open.lines_done = open.lines_total;
    progress = ProgressOf(id, open);
    if (!finished) {
      scheduler_->ReportChunkProgress(progress);
      return;
    }
    chunks_.erase(chunk);
  }
  Finish(id, progress);
}

proto::ChunkProgress QueueBatchSource::ProgressOf(uint64_t id, const OpenChunk& chunk) const {
  proto::ChunkProgress progress;
  progress.set_queue(queue_);
  progress.set_chunk_id(id);
  progress.set_lines_done(chunk.lines_done);
  progress.set_samples_trained(chunk.samples_trained);
  progress.set_batches_in_flight(static_cast<uint32_t>(chunk.taken.size()));
  return progress;
}

proto::QueueTotals QueueBatchSource::totals() const {
  return scheduler_->DrainedQueueTotals(queue_);
}

void QueueBatchSource::Finish(uint64_t id, const proto::ChunkProgress& progress) {
  absl::Status finished = scheduler_->FinishChunk(queue_, id, wait_timeout_, progress);
  absl::MutexLock lock(&mutex_);
  if (!finished.ok() && status_.ok()) {
    status_ = finished;
    stopped_ = true;
    return;
  }
  ++chunks_finished_;
}

absl::Status QueueBatchSource::status() const {
  absl::MutexLock lock(&mutex_);
  return status_;
}

void QueueBatchSource::Stop() {
  absl::MutexLock lock(&mutex_);
  stopped_ = true;
}

int64_t QueueBatchSource::chunks_finished() const {
  absl::MutexLock lock(&mutex_);
  return chunks_finished_;
}

int64_t QueueBatchSource::bad_lines() const {
  absl::MutexLock lock(&mutex_);
  return bad_lines_;
}

}  // namespace granary
