#include "common/vector_file.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "google/protobuf/util/delimited_message_util.h"

namespace granary {

absl::StatusOr<std::unique_ptr<VectorFileWriter>> VectorFileWriter::Create(
    const std::string& path, const proto::VectorFileHeader& header) {
  if (header.dim() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": vector dim must be >= 1"));
  }
  std::unique_ptr<VectorFileWriter> writer(new VectorFileWriter(path, header.dim()));
  writer->out_.open(path, std::ios::binary | std::ios::trunc);
  if (!writer->out_) return absl::UnavailableError(absl::StrCat(path, ": cannot create"));
  proto::VectorRecord record;
  *record.mutable_header() = header;
  record.mutable_header()->set_format(kVectorFormat);
  absl::Status status = writer->WriteRecord(record);
  if (!status.ok()) return status;
  return writer;
}

absl::Status VectorFileWriter::WriteRecord(const proto::VectorRecord& record) {
  if (!google::protobuf::util::SerializeDelimitedToOstream(record, &out_) || !out_) {
    return absl::UnavailableError(absl::StrCat(path_, ": write failed (disk full?)"));
  }
  return absl::OkStatus();
}

absl::Status VectorFileWriter::WriteBlock() {
  if (block_vectors_ == 0) return absl::OkStatus();
  proto::VectorRecord record;
  record.mutable_block()->Swap(&block_);
  block_vectors_ = 0;
  ++blocks_;
  return WriteRecord(record);
}

absl::Status VectorFileWriter::Add(uint64_t key, absl::Span<const float> values) {
  if (values.size() != dim_) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": vector of key ", key, " has ",
                                                   values.size(), " values, the file's dim is ",
                                                   dim_));
  }
  block_.mutable_keys()->append(reinterpret_cast<const char*>(&key), sizeof(key));
  block_.mutable_values()->append(reinterpret_cast<const char*>(values.data()),
                                  sizeof(float) * values.size());
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
  status = WriteRecord(record);
  if (!status.ok()) return status;
  out_.close();
  if (!out_) return absl::UnavailableError(absl::StrCat(path_, ": close failed (disk full?)"));
  return absl::OkStatus();
}

absl::StatusOr<VectorSet> ReadVectorFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open vector file"));
  google::protobuf::io::IstreamInputStream stream(&in);
  VectorSet set;
  uint64_t blocks = 0;
  auto corrupt = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(path, ": ", what, " (after ", blocks, " blocks)"));
  };
  proto::VectorRecord record;
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&record, &stream, &clean_eof) ||
      !record.has_header() || record.header().format() != kVectorFormat ||
      record.header().dim() == 0) {
    return corrupt("no granary-vectors-v1 header");
  }
  set.header = record.header();
  const size_t dim = set.header.dim();
  while (true) {
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&record, &stream, &clean_eof)) {
      return corrupt(clean_eof ? "truncated: no footer" : "unreadable record");
    }
    if (record.has_footer()) {
      if (record.footer().blocks() != blocks || record.footer().vectors() != set.keys.size()) {
        return corrupt(absl::StrCat("footer counts ", record.footer().blocks(), "/",
                                    record.footer().vectors(), " disagree with the blocks read ",
                                    blocks, "/", set.keys.size()));
      }
      return set;
    }
    if (!record.has_block()) return corrupt("a second header");
    const proto::VectorBlock& block = record.block();
    const size_t n = block.keys().size() / sizeof(uint64_t);
    if (block.keys().size() % sizeof(uint64_t) != 0 ||
        block.values().size() != n * dim * sizeof(float)) {
      return corrupt(absl::StrCat("malformed block ", blocks, ": ", block.keys().size(),
                                  " key bytes, ", block.values().size(), " value bytes"));
    }
    const size_t old_keys = set.keys.size();
    set.keys.resize(old_keys + n);
    set.values.resize((old_keys + n) * dim);
    if (n > 0) {
      std::memcpy(set.keys.data() + old_keys, block.keys().data(), block.keys().size());
      std::memcpy(set.values.data() + old_keys * dim, block.values().data(), block.values().size());
    }
    ++blocks;
  }
}

}  // namespace granary
