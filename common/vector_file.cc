#include "common/vector_file.h"

#include "absl/strings/str_cat.h"

namespace granary {

absl::StatusOr<std::unique_ptr<VectorFileWriter>> VectorFileWriter::Create(
    const std::string& path, const proto::VectorFileHeader& header) {
  if (header.dim() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": vector dim must be >= 1"));
  }
  absl::StatusOr<std::unique_ptr<RecordWriter>> records = RecordWriter::Create(path);
  if (!records.ok()) return records.status();
  std::unique_ptr<VectorFileWriter> writer(new VectorFileWriter(*std::move(records), header.dim()));
  proto::VectorRecord record;
  *record.mutable_header() = header;
  record.mutable_header()->set_format(kVectorFormat);
  absl::Status status = writer->records_->Write(record);
  if (!status.ok()) return status;
  return writer;
}

absl::Status VectorFileWriter::WriteBlock() {
  if (block_vectors_ == 0) return absl::OkStatus();
  proto::VectorRecord record;
  record.mutable_block()->Swap(&block_);
  block_vectors_ = 0;
  ++blocks_;
  return records_->Write(record);
}

absl::Status VectorFileWriter::Add(uint64_t key, absl::Span<const float> values) {
  if (values.size() != dim_) {
    return absl::InvalidArgumentError(absl::StrCat(records_->path(), ": vector of key ", key,
                                                   " has ", values.size(),
                                                   " values, the file's dim is ", dim_));
  }
  AppendRawArray(absl::MakeConstSpan(&key, 1), block_.mutable_keys());
  AppendRawArray(values, block_.mutable_values());
  ++vectors_;
  if (++block_vectors_ == kVectorsPerBlock) return WriteBlock();
  return absl::OkStatus();
}

absl::Status VectorFileWriter::Finish() {
  absl::Status status = WriteBlock();
  if (!status.ok()) return status;
  proto::VectorRecord record;
  record.mutable_footer()->set_blocks(blocks_);
  record.mutable_footer()->set_vectors(vectors_);
  status = records_->Write(record);
  if (!status.ok()) return status;
  return records_->Finish();
}

absl::StatusOr<VectorSet> ReadVectorFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<RecordReader>> opened = RecordReader::Open(path, "vector file");
  if (!opened.ok()) return opened.status();
  RecordReader& records = **opened;
  proto::VectorRecord record;
  absl::StatusOr<bool> read = records.Read(&record);
  if (!read.ok()) return read.status();
  if (!*read || !record.has_header() || record.header().format() != kVectorFormat ||
      record.header().dim() == 0) {
    return records.Corrupt("no granary-vectors-v1 header");
  }
  VectorSet set;
  set.header = std::move(*record.mutable_header());
  const size_t dim = set.header.dim();
  for (uint64_t blocks = 0;; ++blocks) {
    read = records.Read(&record);
    if (!read.ok()) return read.status();
    if (!*read)
      return records.Corrupt(absl::StrCat("truncated: no footer after ", blocks, " blocks"));
    if (record.has_footer()) {
      if (record.footer().blocks() != blocks || record.footer().vectors() != set.keys.size()) {
        return records.Corrupt(
            absl::StrCat("footer counts ", record.footer().blocks(), "/", record.footer().vectors(),
                         " disagree with the blocks read ", blocks, "/", set.keys.size()));
      }
      return set;
    }
    if (!record.has_block()) return records.Corrupt("a second header");
    const proto::VectorBlock& block = record.block();
    const size_t old_keys = set.keys.size();
    if (!AppendDecodedArray(block.keys(), &set.keys) ||
        block.values().size() != (set.keys.size() - old_keys) * dim * sizeof(float) ||
        !AppendDecodedArray(block.values(), &set.values)) {
      return records.Corrupt(absl::StrCat("malformed block ", blocks, ": ", block.keys().size(),
                                          " key bytes, ", block.values().size(), " value bytes"));
    }
  }
}

}  // namespace granary
