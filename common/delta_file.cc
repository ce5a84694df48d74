#include "common/delta_file.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/delimited_message_util.h"

namespace granary {

absl::StatusOr<std::unique_ptr<DeltaWriter>> DeltaWriter::Create(const std::string& path,
                                                                 const proto::DeltaHeader& header) {
  std::unique_ptr<DeltaWriter> writer(new DeltaWriter(path));
  writer->out_.open(path, std::ios::binary | std::ios::trunc);
  if (!writer->out_) return absl::UnavailableError(absl::StrCat(path, ": cannot create"));
  proto::DeltaRecord record;
  *record.mutable_header() = header;
  record.mutable_header()->set_format(kDeltaFormat);
  absl::Status status = writer->WriteRecord(record);
  if (!status.ok()) return status;
  return writer;
}

absl::Status DeltaWriter::WriteRecord(const proto::DeltaRecord& record) {
  if (!google::protobuf::util::SerializeDelimitedToOstream(record, &out_) || !out_) {
    return absl::UnavailableError(absl::StrCat(path_, ": write failed (disk full?)"));
  }
  return absl::OkStatus();
}

absl::Status DeltaWriter::WriteBlock() {
  if (block_.keys().empty() && block_.tombstones().empty()) return absl::OkStatus();
  proto::DeltaRecord record;
  record.mutable_block()->Swap(&block_);
  block_.set_table(record.block().table());
  block_.set_dim(record.block().dim());
  block_rows_ = 0;
  ++blocks_;
  return WriteRecord(record);
}

absl::Status DeltaWriter::SwitchTable(const std::string& table, int dim) {
  if (block_.table() == table && block_rows_ < kRowsPerBlock) return absl::OkStatus();
  absl::Status status = WriteBlock();
  block_.set_table(table);
  block_.set_dim(static_cast<uint32_t>(dim));
  return status;
}

absl::Status DeltaWriter::AddRow(const std::string& table, int dim, uint64_t key,
                                 const float* values) {
  absl::Status status = SwitchTable(table, dim);
  if (!status.ok()) return status;
  block_.mutable_keys()->append(reinterpret_cast<const char*>(&key), sizeof(key));
  block_.mutable_values()->append(reinterpret_cast<const char*>(values), sizeof(float) * dim);
  ++block_rows_;
  ++rows_;
  return absl::OkStatus();
}

absl::Status DeltaWriter::AddTombstone(const std::string& table, int dim, uint64_t key) {
  absl::Status status = SwitchTable(table, dim);
  if (!status.ok()) return status;
  block_.mutable_tombstones()->append(reinterpret_cast<const char*>(&key), sizeof(key));
  ++block_rows_;
  ++tombstones_;
  return absl::OkStatus();
}

absl::Status DeltaWriter::Finish() {
  absl::Status status = WriteBlock();
  if (!status.ok()) return status;
  proto::DeltaRecord record;
  record.mutable_footer()->set_blocks(blocks_);
  record.mutable_footer()->set_rows(rows_);
  record.mutable_footer()->set_tombstones(tombstones_);
  status = WriteRecord(record);
  if (!status.ok()) return status;
  out_.close();
  if (!out_) return absl::UnavailableError(absl::StrCat(path_, ": close failed (disk full?)"));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DeltaReader>> DeltaReader::Open(const std::string& path) {
  std::unique_ptr<DeltaReader> reader(new DeltaReader(path));
  reader->in_.open(path, std::ios::binary);
  if (!reader->in_) return absl::NotFoundError(absl::StrCat(path, ": cannot open delta file"));
  reader->stream_ = std::make_unique<google::protobuf::io::IstreamInputStream>(&reader->in_);
  proto::DeltaRecord record;
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&record, reader->stream_.get(),
                                                                &clean_eof) ||
      !record.has_header() || record.header().format() != kDeltaFormat) {
    return reader->Corrupt("no granary-delta-v1 header");
  }
  reader->header_ = record.header();
  return reader;
}

absl::Status DeltaReader::Corrupt(const std::string& what) const {
  return absl::DataLossError(absl::StrCat(path_, ": ", what, " (after ", blocks_, " blocks)"));
}

absl::StatusOr<bool> DeltaReader::Next(DeltaTableBlock* block) {
  if (done_) return false;
  proto::DeltaRecord record;
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&record, stream_.get(),
                                                                &clean_eof)) {
    return Corrupt(clean_eof ? "truncated: no footer" : "unreadable record");
  }
  if (record.has_footer()) {
    const proto::DeltaFooter& footer = record.footer();
    if (footer.blocks() != blocks_ || footer.rows() != rows_ ||
        footer.tombstones() != tombstones_) {
      return Corrupt(absl::StrCat("footer counts ", footer.blocks(), "/", footer.rows(), "/",
                                  footer.tombstones(), " disagree with the blocks read ", blocks_,
                                  "/", rows_, "/", tombstones_));
    }
    done_ = true;
    return false;
  }
  if (!record.has_block()) return Corrupt("a second header");
  const proto::DeltaBlock& in = record.block();
  size_t n = in.keys().size() / sizeof(uint64_t);
  if (in.dim() == 0 || in.keys().size() % sizeof(uint64_t) != 0 ||
      in.values().size() != n * in.dim() * sizeof(float) ||
      in.tombstones().size() % sizeof(uint64_t) != 0) {
    return Corrupt(absl::StrCat("malformed block of table '", in.table(), "'"));
  }
  block->table = in.table();
  block->dim = static_cast<int>(in.dim());
  block->keys.resize(n);
  if (n > 0) std::memcpy(block->keys.data(), in.keys().data(), in.keys().size());
  block->values.resize(n * in.dim());
  if (n > 0) std::memcpy(block->values.data(), in.values().data(), in.values().size());
  block->tombstones.resize(in.tombstones().size() / sizeof(uint64_t));
  if (!block->tombstones.empty()) {
    std::memcpy(block->tombstones.data(), in.tombstones().data(), in.tombstones().size());
  }
  ++blocks_;
  rows_ += n;
  tombstones_ += block->tombstones.size();
  return true;
}

}  // namespace granary
