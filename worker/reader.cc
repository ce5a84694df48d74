#include "worker/reader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/feature_key.h"
#include "glog/logging.h"

namespace granary {
namespace {

using Role = proto::ColumnConfig::Role;

// Bytes zlib reads from the file at a time, and the initial size of the line buffer (it
// doubles for longer lines).
constexpr unsigned kGzipBufferBytes = 256 << 10;
constexpr size_t kLineBufferBytes = 1 << 20;
// Longest excerpt of a cell quoted in a bad-line reason.
constexpr size_t kMaxQuotedChars = 40;

// The lines of one plain or gzip file. zlib tells the two apart by the gzip magic bytes and
// reads anything else as plain text ("transparent" mode).
class LineSource {
 public:
  explicit LineSource(const std::string& path) : path_(path), buffer_(kLineBufferBytes) {}
  ~LineSource() {
    if (file_ != nullptr) gzclose(file_);
  }
  LineSource(const LineSource&) = delete;
  LineSource& operator=(const LineSource&) = delete;

  // NotFound or another errno-derived status naming the file if it cannot be opened.
  absl::Status Open() {
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) {
      return absl::ErrnoToStatus(errno, absl::StrCat(path_, ": cannot open input file"));
    }
    gzbuffer(file_, kGzipBufferBytes);
    return absl::OkStatus();
  }

  // Positions the source at the first line that starts at or after byte `offset`: the line
  // holding byte offset - 1 is skipped. REQUIRES: a plain file, nothing read but the header.
  absl::Status SkipToLineAt(uint64_t offset) {
    if (gzdirect(file_) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": a byte range of a gzip file cannot be read on its own"));
    }
    if (gzseek(file_, static_cast<z_off_t>(offset - 1), SEEK_SET) < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat(path_, ": cannot seek to byte ", offset));
    }
    begin_ = scanned_ = end_ = 0;
    eof_ = false;
    buffer_offset_ = offset - 1;
    std::string_view rest_of_line;
    NextLine(&rest_of_line);
    return status_;
  }

  // File offset of the first byte of the line NextLine returns next.
  uint64_t next_line_offset() const { return buffer_offset_ + begin_; }

  // Sets *line to the next line without its "\n" or "\r\n"; it stays valid until the next
  // call. Returns false at the end of the file or on an error (status() says which). An
  // unterminated last line is a line, except in a truncated gzip stream, where it is dropped.
  bool NextLine(std::string_view* line) {
    while (true) {
      const char* newline =
          static_cast<const char*>(std::memchr(buffer_.data() + scanned_, '\n', end_ - scanned_));
      if (newline != nullptr) {
        size_t at = newline - buffer_.data();
        *line = Cut(begin_, at);
        begin_ = scanned_ = at + 1;
        return true;
      }
      scanned_ = end_;
      if (eof_) {
        if (begin_ == end_) return false;
        *line = Cut(begin_, end_);
        begin_ = scanned_ = end_;
        return true;
      }
      if (!Fill()) return false;
    }
  }

  const absl::Status& status() const { return status_; }

 private:
  std::string_view Cut(size_t from, size_t to) const {
    if (to > from && buffer_[to - 1] == '\r') --to;
    return std::string_view(buffer_.data() + from, to - from);
  }

  // Appends more bytes after the pending partial line. Returns false on a read error.
  bool Fill() {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      buffer_offset_ += begin_;
      end_ -= begin_;
      scanned_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
    int n = gzread(file_, buffer_.data() + end_, static_cast<unsigned>(buffer_.size() - end_));
    int error = Z_OK;
    const char* message = gzerror(file_, &error);
    if (n < 0) {
      status_ = error == Z_ERRNO
                    ? absl::ErrnoToStatus(errno, absl::StrCat(path_, ": read failed"))
                    : absl::DataLossError(absl::StrCat(path_, ": unreadable gzip: ", message));
      return false;
    }
    if (n == 0) {
      // zlib reports Z_BUF_ERROR when the input ended inside a gzip stream.
      if (error == Z_BUF_ERROR) {
        status_ = absl::DataLossError(
            absl::StrCat(path_, ": truncated gzip (the file ends inside the stream)"));
        return false;
      }
      eof_ = true;
    }
    end_ += n;
    return true;
  }

  const std::string path_;
  gzFile file_ = nullptr;
  std::vector<char> buffer_;
  uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]
  size_t begin_ = 0;            // start of the first line not yet returned
  size_t scanned_ = 0;          // [begin_, scanned_) holds no newline
  size_t end_ = 0;              // end of the bytes read
  bool eof_ = false;
  absl::Status status_;
};

// This abseil build has its own string_view type, distinct from std::string_view.
absl::string_view Absl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

// Splits `text` at every `separator` into *parts (reusing its capacity).
void SplitInto(std::string_view text, char separator, std::vector<std::string_view>* parts) {
  parts->clear();
  size_t start = 0;
  while (true) {
    size_t at = text.find(separator, start);
    if (at == std::string_view::npos) {
      parts->push_back(text.substr(start));
      return;
    }
    parts->push_back(text.substr(start, at - start));
    start = at + 1;
  }
}

std::string Quote(std::string_view text) {
  if (text.size() <= kMaxQuotedChars) return absl::StrCat("'", Absl(text), "'");
  return absl::StrCat("'", Absl(text.substr(0, kMaxQuotedChars)), "...'");
}

bool ParseFinite(std::string_view text, float* value) {
  return absl::SimpleAtof(Absl(text), value) && std::isfinite(*value);
}

bool AppendFloat(std::string_view text, FloatColumn* column, std::string* reason) {
  float value = 0;
  if (!text.empty() && !ParseFinite(text, &value)) {
    *reason = absl::StrCat(Quote(text), " is not a finite number");
    return false;
  }
  column->values.push_back(value);
  column->present.push_back(text.empty() ? 0 : 1);
  return true;
}

void AppendCategorical(std::string_view text, uint64_t seed, CategoricalColumn* column) {
  column->keys.push_back(text.empty() ? 0 : FeatureKey(seed, text));
  column->present.push_back(text.empty() ? 0 : 1);
}

bool AppendMultiCategorical(std::string_view text, uint64_t seed, MultiCategoricalColumn* column,
                            std::string* reason) {
  if (!text.empty()) {
    size_t start = 0;
    while (true) {
      size_t at = std::min(text.find(',', start), text.size());
      if (at == start) {
        *reason = absl::StrCat("empty token in ", Quote(text));
        return false;
      }
      column->keys.push_back(FeatureKey(seed, text.substr(start, at - start)));
      if (at == text.size()) break;
      start = at + 1;
    }
  }
  column->offsets.push_back(static_cast<uint32_t>(column->keys.size()));
  return true;
}

// Drops whatever a failed line appended after the batch's first `batch->size` samples.
void Rollback(Batch* batch) {
  const size_t n = batch->size;
  auto truncate_floats = [n](std::vector<FloatColumn>& columns) {
    for (FloatColumn& column : columns) {
      column.values.resize(n);
      column.present.resize(n);
    }
  };
  truncate_floats(batch->labels);
  truncate_floats(batch->numerics);
  for (CategoricalColumn& column : batch->categoricals) {
    column.keys.resize(n);
    column.present.resize(n);
  }
  for (MultiCategoricalColumn& column : batch->multi_categoricals) {
    column.offsets.resize(n + 1);
    column.keys.resize(column.offsets[n]);
  }
  for (SequenceColumn& column : batch->sequences) {
    column.offsets.resize(n + 1);
    for (SequenceField& field : column.fields) {
      field.keys.resize(field.kind == proto::StepFieldConfig::CATEGORICAL ? column.offsets[n] : 0);
      field.values.resize(field.kind == proto::StepFieldConfig::NUMERIC ? column.offsets[n] : 0);
    }
  }
}

}  // namespace

std::string ColumnHashSpace(const proto::ColumnConfig& column) {
  return column.hash_space().empty() ? column.name() : column.hash_space();
}

std::string StepFieldHashSpace(const proto::ColumnConfig& column,
                               const proto::StepFieldConfig& step_field) {
  return step_field.hash_space().empty() ? absl::StrCat(column.name(), ".", step_field.name())
                                         : step_field.hash_space();
}

// Turns lines into samples of a Batch, by a DatasetConfig compiled once: field seeds hashed,
// each column's place in the batch known. Thread-safe: const after construction.
class BatchParser {
 public:
  // Where a cell of a line goes: the column vector of `role` in Batch, at `index`.
  struct Cell {
    Role role = proto::ColumnConfig::IGNORED;
    int index = -1;
  };

  BatchParser(const proto::DatasetConfig& config, int batch_size) : batch_size_(batch_size) {
    for (int i = 0; i < config.columns_size(); ++i) {
      const proto::ColumnConfig& column = config.columns(i);
      Cell cell{column.role(), -1};
      switch (column.role()) {
        case proto::ColumnConfig::LABEL:
          cell.index = static_cast<int>(empty_.labels.size());
          empty_.labels.push_back({column.name(), {}, {}});
          break;
        case proto::ColumnConfig::NUMERIC:
          cell.index = static_cast<int>(empty_.numerics.size());
          empty_.numerics.push_back({column.name(), {}, {}});
          break;
        case proto::ColumnConfig::CATEGORICAL:
          cell.index = static_cast<int>(empty_.categoricals.size());
          empty_.categoricals.push_back({column.name(), {}, {}});
          categorical_seeds_.push_back(FieldSeed(ColumnHashSpace(column)));
          break;
        case proto::ColumnConfig::MULTI_CATEGORICAL:
          cell.index = static_cast<int>(empty_.multi_categoricals.size());
          empty_.multi_categoricals.push_back({column.name(), {}, {}});
          multi_seeds_.push_back(FieldSeed(ColumnHashSpace(column)));
          break;
        case proto::ColumnConfig::SEQUENCE: {
          cell.index = static_cast<int>(empty_.sequences.size());
          SequenceColumn& sequence = empty_.sequences.emplace_back();
          sequence.name = column.name();
          SequencePlan& plan = sequences_.emplace_back();
          plan.max_steps = column.has_max_sequence_length() ? column.max_sequence_length() : 0;
          for (const proto::StepFieldConfig& step_field : column.step_fields()) {
            SequenceField& field = sequence.fields.emplace_back();
            field.name = step_field.name();
            field.kind = step_field.kind();
            plan.numeric.push_back(step_field.kind() == proto::StepFieldConfig::NUMERIC);
            plan.seeds.push_back(
                plan.numeric.back() ? 0 : FieldSeed(StepFieldHashSpace(column, step_field)));
          }
          break;
        }
        default:
          break;
      }
      columns_.emplace(column.name(), cell);
    }
  }

  // A fresh batch: named columns, no samples, per-sample arrays reserved for a full batch.
  Batch NewBatch() const {
    Batch batch = empty_;
    for (auto* floats : {&batch.labels, &batch.numerics}) {
      for (FloatColumn& column : *floats) {
        column.values.reserve(batch_size_);
        column.present.reserve(batch_size_);
      }
    }
    for (CategoricalColumn& column : batch.categoricals) {
      column.keys.reserve(batch_size_);
      column.present.reserve(batch_size_);
    }
    for (MultiCategoricalColumn& column : batch.multi_categoricals) {
      column.offsets.reserve(batch_size_ + 1);
      column.offsets.push_back(0);
    }
    for (SequenceColumn& column : batch.sequences) {
      column.offsets.reserve(batch_size_ + 1);
      column.offsets.push_back(0);
    }
    return batch;
  }

  // The Cell of each header column, in header order. InvalidArgument naming `path` if a
  // configured column is missing, a header column is unknown to the config, or repeated.
  absl::StatusOr<std::vector<Cell>> MatchHeader(std::string_view header,
                                                const std::string& path) const {
    std::vector<std::string_view> names;
    SplitInto(header, '\t', &names);
    std::vector<Cell> cells;
    std::vector<std::string> unknown;
    absl::flat_hash_set<absl::string_view> seen;
    for (std::string_view name : names) {
      if (!seen.insert(Absl(name)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":1: header names column '", Absl(name), "' twice"));
      }
      auto it = columns_.find(Absl(name));
      if (it == columns_.end()) {
        unknown.emplace_back(name);
      } else {
        cells.push_back(it->second);
      }
    }
    if (!unknown.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":1: header has columns the dataset config does not name: '",
          absl::StrJoin(unknown, "', '"), "' (configure them, as IGNORED to skip them)"));
    }
    std::vector<std::string> missing;
    for (const auto& [name, cell] : columns_) {
      if (!seen.contains(name)) missing.push_back(name);
    }
    if (!missing.empty()) {
      std::sort(missing.begin(), missing.end());
      return absl::InvalidArgumentError(absl::StrCat(path, ":1: header lacks configured column",
                                                     missing.size() > 1 ? "s" : "", " '",
                                                     absl::StrJoin(missing, "', '"), "'"));
    }
    return cells;
  }

  // Appends the sample of `line` to *batch and returns true; or leaves *batch as it was, sets
  // *reason and returns false. `cells` from MatchHeader; *split is scratch space.
  bool ParseLine(std::string_view line, const std::vector<Cell>& cells,
                 std::vector<std::string_view>* split, Batch* batch, std::string* reason) const {
    SplitInto(line, '\t', split);
    if (split->size() != cells.size()) {
      *reason = line.empty() ? std::string("empty line")
                             : absl::StrCat("expected ", cells.size(),
                                            " tab-separated cells, found ", split->size());
      return false;
    }
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string_view text = (*split)[i];
      const int index = cells[i].index;
      bool ok = true;
      const std::string* name = nullptr;
      switch (cells[i].role) {
        case proto::ColumnConfig::LABEL:
          ok = AppendFloat(text, &batch->labels[index], reason);
          name = &batch->labels[index].name;
          break;
        case proto::ColumnConfig::NUMERIC:
          ok = AppendFloat(text, &batch->numerics[index], reason);
          name = &batch->numerics[index].name;
          break;
        case proto::ColumnConfig::CATEGORICAL:
          AppendCategorical(text, categorical_seeds_[index], &batch->categoricals[index]);
          break;
        case proto::ColumnConfig::MULTI_CATEGORICAL:
          ok = AppendMultiCategorical(text, multi_seeds_[index], &batch->multi_categoricals[index],
                                      reason);
          name = &batch->multi_categoricals[index].name;
          break;
        case proto::ColumnConfig::SEQUENCE:
          ok = AppendSequence(text, sequences_[index], &batch->sequences[index], reason);
          name = &batch->sequences[index].name;
          break;
        default:
          break;
      }
      if (!ok) {
        *reason = absl::StrCat("column '", *name, "': ", *reason);
        Rollback(batch);
        return false;
      }
    }
    ++batch->size;
    return true;
  }

 private:
  struct SequencePlan {
    std::vector<uint64_t> seeds;   // per step field; 0 for NUMERIC fields
    std::vector<uint8_t> numeric;  // per step field
    uint32_t max_steps = 0;        // 0 = keep every step
  };

  // Parses every step (a malformed step makes the line bad even if it would be cut), but
  // appends only the plan.max_steps most recent ones.
  static bool AppendSequence(std::string_view text, const SequencePlan& plan,
                             SequenceColumn* column, std::string* reason) {
    const size_t num_fields = plan.seeds.size();
    uint32_t num_steps = 0;
    if (!text.empty()) num_steps = 1 + std::count(text.begin(), text.end(), ';');
    const uint32_t skip =
        plan.max_steps > 0 && num_steps > plan.max_steps ? num_steps - plan.max_steps : 0;
    size_t start = 0;
    for (uint32_t step = 0; step < num_steps; ++step) {
      size_t step_end = std::min(text.find(';', start), text.size());
      std::string_view step_text = text.substr(start, step_end - start);
      start = step_end + 1;
      size_t field_start = 0;
      size_t f = 0;
      for (;; ++f) {
        size_t field_end = std::min(step_text.find(',', field_start), step_text.size());
        if (f < num_fields) {
          std::string_view field = step_text.substr(field_start, field_end - field_start);
          SequenceField& out = column->fields[f];
          if (field.empty()) {
            *reason = absl::StrCat("step ", step + 1, " field '", out.name, "' is empty");
            return false;
          }
          if (plan.numeric[f]) {
            float value = 0;
            if (!ParseFinite(field, &value)) {
              *reason = absl::StrCat("step ", step + 1, " field '", out.name, "': ", Quote(field),
                                     " is not a finite number");
              return false;
            }
            if (step >= skip) out.values.push_back(value);
          } else if (step >= skip) {
            out.keys.push_back(FeatureKey(plan.seeds[f], field));
          }
        }
        if (field_end == step_text.size()) break;
        field_start = field_end + 1;
      }
      if (f + 1 != num_fields) {
        *reason = absl::StrCat("step ", step + 1, " ", Quote(step_text), " has ", f + 1,
                               " fields, expected ", num_fields);
        return false;
      }
    }
    column->offsets.push_back(column->offsets.back() + (num_steps - skip));
    return true;
  }

  const int batch_size_;
  Batch empty_;                                     // the batch layout: named columns, no samples
  absl::flat_hash_map<std::string, Cell> columns_;  // by column name
  std::vector<uint64_t> categorical_seeds_;         // by Batch::categoricals index
  std::vector<uint64_t> multi_seeds_;               // by Batch::multi_categoricals index
  std::vector<SequencePlan> sequences_;             // by Batch::sequences index
};

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
  if (options.batch_size < 1 || options.prefetch_batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat("reader needs batch_size >= 1 (got ",
                                                   options.batch_size, ") and prefetch_batches",
                                                   " >= 1 (got ", options.prefetch_batches, ")"));
  }
  for (const InputSlice& slice : slices) {
    const std::string& path = slice.path;
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      return absl::NotFoundError(absl::StrCat(path, ": no such input file"));
    }
    if (std::filesystem::is_directory(path, error)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": input is a directory, not a file"));
    }
  }
  auto parser = std::make_unique<const BatchParser>(config, options.batch_size);
  return std::unique_ptr<Reader>(new Reader(std::move(parser), std::move(slices), options, config));
}

Reader::Reader(std::unique_ptr<const BatchParser> parser, std::vector<InputSlice> files,
               const ReaderOptions& options, const proto::DatasetConfig& config)
    : parser_(std::move(parser)),
      files_(std::move(files)),
      options_(options),
      max_bad_line_fraction_(config.has_max_bad_line_fraction() ? config.max_bad_line_fraction()
                                                                : kDefaultMaxBadLineFraction),
      min_lines_before_abort_(config.has_min_lines_before_abort() ? config.min_lines_before_abort()
                                                                  : kDefaultMinLinesBeforeAbort) {
  thread_ = std::thread(&Reader::Run, this);
}

Reader::~Reader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  space_ready_.notify_all();
  thread_.join();
}

bool Reader::Next(Batch* batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  batch_ready_.wait(lock, [this] { return !queue_.empty() || finished_; });
  if (queue_.empty()) return false;
  Batch taken = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  space_ready_.notify_one();
  *batch = std::move(taken);  // frees the caller's previous batch outside the lock
  return true;
}

absl::Status Reader::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

ReaderStats Reader::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void Reader::Run() {
  Batch batch = parser_->NewBatch();
  absl::Status status;
  for (const InputSlice& slice : files_) {
    status = ReadSlice(slice, &batch);
    if (!status.ok()) break;
    ++files_done_;
  }
  if (status.ok() && samples_ == 0 && bad_lines_ > 0) {
    status = absl::DataLossError(absl::StrCat(
        "no good line in ", files_.size(), " input file(s) (first ", files_.front().Name(),
        "): all ", bad_lines_, " data lines are bad; first: ", first_bad_line_));
  }
  // Samples parsed before an error are still delivered.
  if (batch.size > 0 && !absl::IsCancelled(status)) Publish(&batch);
  Finish(std::move(status));
}

absl::Status Reader::ReadSlice(const InputSlice& slice, Batch* batch) {
  // Bad lines of a partial slice are numbered from its start: "<path> bytes B..E:<n>".
  const std::string path = slice.Name();
  LineSource source(slice.path);
  absl::Status status = source.Open();
  if (!status.ok()) return status;
  std::string_view line;
  if (!source.NextLine(&line)) {
    if (!source.status().ok()) return source.status();
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty file, no header line"));
  }
  absl::StatusOr<std::vector<BatchParser::Cell>> cells = parser_->MatchHeader(line, path);
  if (!cells.ok()) return cells.status();
  uint64_t line_number = 1;
  if (slice.begin > source.next_line_offset()) {
    status = source.SkipToLineAt(slice.begin);
    if (!status.ok()) return status;
    line_number = 0;
  }
  std::vector<std::string_view> split;
  std::string reason;
  while ((slice.end == 0 || source.next_line_offset() < slice.end) && source.NextLine(&line)) {
    if (stopping_.load(std::memory_order_relaxed)) return absl::CancelledError("reader destroyed");
    ++line_number;
    ++lines_;
    if (parser_->ParseLine(line, *cells, &split, batch, &reason)) {
      ++samples_;
      if (batch->size == options_.batch_size && !Publish(batch)) {
        return absl::CancelledError("reader destroyed");
      }
    } else {
      ++bad_lines_;
      RecordBadLine(path, line_number, reason);
    }
    if (bad_lines_ > 0 && lines_ > min_lines_before_abort_ &&
        static_cast<double>(bad_lines_) > max_bad_line_fraction_ * static_cast<double>(lines_)) {
      return absl::DataLossError(absl::StrCat(
          path, ":", line_number, ": too many bad lines: ", bad_lines_, " of ", lines_,
          " data lines read (", 100.0 * bad_lines_ / lines_, "%) exceed max_bad_line_fraction ",
          max_bad_line_fraction_, " (checked after min_lines_before_abort ",
          min_lines_before_abort_, " lines); first: ", first_bad_line_));
    }
  }
  return source.status();
}

bool Reader::Publish(Batch* batch) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    space_ready_.wait(lock, [this] {
      return stopping_ || queue_.size() < static_cast<size_t>(options_.prefetch_batches);
    });
    if (stopping_) return false;
    queue_.push_back(std::move(*batch));
    ++stats_.batches_produced;
    stats_.lines = lines_;
    stats_.bad_lines = bad_lines_;
    stats_.samples = samples_;
    stats_.files_done = files_done_;
  }
  batch_ready_.notify_one();
  *batch = parser_->NewBatch();
  return true;
}

void Reader::RecordBadLine(const std::string& path, uint64_t line_number,
                           const std::string& reason) {
  if (bad_lines_ > kLoggedBadLines && bad_lines_ % kBadLineLogInterval != 0) return;
  std::string message = absl::StrCat(path, ":", line_number, ": ", reason);
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

void Reader::Finish(absl::Status status) {
  LOG(INFO) << "reader: read " << files_done_ << " of " << files_.size() << " files, " << lines_
            << " data lines, " << bad_lines_ << " bad: " << status;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = std::move(status);
    stats_.lines = lines_;
    stats_.bad_lines = bad_lines_;
    stats_.samples = samples_;
    stats_.files_done = files_done_;
    finished_ = true;
  }
  batch_ready_.notify_all();
}

}  // namespace granary
