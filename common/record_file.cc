#include "common/record_file.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/delimited_message_util.h"

namespace granary {

RecordWriter::RecordWriter(std::string path)
    : path_(std::move(path)), temporary_(TemporaryPathOf(path_)) {}

absl::StatusOr<std::unique_ptr<RecordWriter>> RecordWriter::Create(const std::string& path) {
  std::unique_ptr<RecordWriter> writer(new RecordWriter(path));
  writer->out_.open(writer->temporary_, std::ios::binary | std::ios::trunc);
  if (!writer->out_) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot create ", writer->temporary_));
  }
  return writer;
}

RecordWriter::~RecordWriter() {
  if (published_) return;
  out_.close();
  std::remove(temporary_.c_str());
}

absl::Status RecordWriter::Write(const google::protobuf::MessageLite& record) {
  const size_t bytes = record.ByteSizeLong();
  if (bytes > kMaxRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ", record ", records_, ": ", bytes,
                                                   " bytes, more than the limit of ",
                                                   kMaxRecordBytes));
  }
  if (!google::protobuf::util::SerializeDelimitedToOstream(record, &out_) || !out_) {
    return absl::UnavailableError(
        absl::StrCat(path_, ", record ", records_, ": write failed (disk full?)"));
  }
  ++records_;
  return absl::OkStatus();
}

absl::Status RecordWriter::Finish() {
  out_.close();
  if (!out_) return absl::UnavailableError(absl::StrCat(path_, ": close failed (disk full?)"));
  absl::Status status = PublishFile(temporary_, path_);
  published_ = status.ok();
  return status;
}

RecordReader::RecordReader(std::string path, uint64_t file_bytes)
    : path_(std::move(path)), file_bytes_(file_bytes) {}

absl::StatusOr<std::unique_ptr<RecordReader>> RecordReader::Open(const std::string& path,
                                                                 absl::string_view what) {
  std::error_code error;
  const uint64_t file_bytes = std::filesystem::file_size(path, error);
  if (error) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open ", what, ": ", error.message()));
  }
  std::unique_ptr<RecordReader> reader(new RecordReader(path, file_bytes));
  reader->in_.open(path, std::ios::binary);
  if (!reader->in_) return absl::NotFoundError(absl::StrCat(path, ": cannot open ", what));
  reader->stream_ = std::make_unique<google::protobuf::io::IstreamInputStream>(&reader->in_);
  return reader;
}

absl::Status RecordReader::Corrupt(absl::string_view what) const {
  return absl::DataLossError(absl::StrCat(path_, ", record ", index_, ": ", what));
}

absl::StatusOr<bool> RecordReader::Read(google::protobuf::MessageLite* record) {
  record->Clear();
  index_ = records_read_;
  // A CodedInputStream per record, as ParseDelimitedFromZeroCopyStream does: one for the whole
  // file would stop at its total-bytes limit (2 GiB). Its destructor hands unread bytes back
  // to stream_, so stream_->ByteCount() is the offset of the next record.
  const uint64_t offset = static_cast<uint64_t>(stream_->ByteCount());
  google::protobuf::io::CodedInputStream input(stream_.get());
  uint32_t size = 0;
  if (!input.ReadVarint32(&size)) {
    if (input.CurrentPosition() == 0 && offset == file_bytes_) return false;
    return Corrupt(absl::StrCat("unreadable length at byte ", offset, " (truncated or corrupt)"));
  }
  const uint64_t left =
      file_bytes_ - std::min<uint64_t>(file_bytes_, offset + input.CurrentPosition());
  if (size > kMaxRecordBytes || size > left) {
    return Corrupt(absl::StrCat("length ", size, " at byte ", offset, " exceeds ",
                                size > left ? "the bytes left in the file, " : "the limit, ",
                                size > left ? left : kMaxRecordBytes, " (truncated or corrupt)"));
  }
  const google::protobuf::io::CodedInputStream::Limit limit =
      input.PushLimit(static_cast<int>(size));
  if (!record->ParseFromCodedStream(&input) || !input.ConsumedEntireMessage() ||
      input.BytesUntilLimit() != 0) {
    return Corrupt(absl::StrCat("unparsable record of ", size, " bytes at byte ", offset));
  }
  input.PopLimit(limit);
  ++records_read_;
  return true;
}

}  // namespace granary
