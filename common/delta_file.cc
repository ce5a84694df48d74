#include "common/delta_file.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace granary {

absl::StatusOr<std::unique_ptr<DeltaWriter>> DeltaWriter::Create(const std::string& path,
                                                                 const proto::DeltaHeader& header) {
  absl::StatusOr<std::unique_ptr<RecordWriter>> records = RecordWriter::Create(path);
  if (!records.ok()) return records.status();
  std::unique_ptr<DeltaWriter> writer(new DeltaWriter(*std::move(records)));
  proto::DeltaRecord record;
  *record.mutable_header() = header;
  record.mutable_header()->set_format(kDeltaFormat);
  absl::Status status = writer->records_->Write(record);
  if (!status.ok()) return status;
  return writer;
}

absl::Status DeltaWriter::WriteBlock() {
  if (block_.keys().empty() && block_.tombstones().empty()) return absl::OkStatus();
  proto::DeltaRecord record;
  record.mutable_block()->Swap(&block_);
  block_.set_table(record.block().table());
  block_.set_dim(record.block().dim());
  block_rows_ = 0;
  ++blocks_;
  return records_->Write(record);
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
  AppendRawArray(absl::MakeConstSpan(&key, 1), block_.mutable_keys());
  AppendRawArray(absl::MakeConstSpan(values, dim), block_.mutable_values());
  ++block_rows_;
  ++rows_;
  return absl::OkStatus();
}

absl::Status DeltaWriter::AddTombstone(const std::string& table, int dim, uint64_t key) {
  absl::Status status = SwitchTable(table, dim);
  if (!status.ok()) return status;
  AppendRawArray(absl::MakeConstSpan(&key, 1), block_.mutable_tombstones());
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
  status = records_->Write(record);
  if (!status.ok()) return status;
  return records_->Finish();
}

absl::StatusOr<std::unique_ptr<DeltaReader>> DeltaReader::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<RecordReader>> records = RecordReader::Open(path, "delta file");
  if (!records.ok()) return records.status();
  proto::DeltaRecord record;
  absl::StatusOr<bool> read = (*records)->Read(&record);
  if (!read.ok()) return read.status();
  if (!*read || !record.has_header() || record.header().format() != kDeltaFormat) {
    return (*records)->Corrupt("no granary-delta-v1 header");
  }
  return std::unique_ptr<DeltaReader>(
      new DeltaReader(*std::move(records), std::move(*record.mutable_header())));
}

absl::StatusOr<bool> DeltaReader::Next(DeltaTableBlock* block) {
  if (done_) return false;
  proto::DeltaRecord record;
  absl::StatusOr<bool> read = records_->Read(&record);
  if (!read.ok()) return read.status();
  if (!*read)
    return records_->Corrupt(absl::StrCat("truncated: no footer after ", blocks_, " blocks"));
  if (record.has_footer()) {
    const proto::DeltaFooter& footer = record.footer();
    if (footer.blocks() != blocks_ || footer.rows() != rows_ ||
        footer.tombstones() != tombstones_) {
      return records_->Corrupt(absl::StrCat(
          "footer counts ", footer.blocks(), "/", footer.rows(), "/", footer.tombstones(),
          " disagree with the blocks read ", blocks_, "/", rows_, "/", tombstones_));
    }
    done_ = true;
    return false;
  }
  if (!record.has_block()) return records_->Corrupt("a second header");
  const proto::DeltaBlock& in = record.block();
  block->keys.clear();
  block->values.clear();
  block->tombstones.clear();
  // DeltaTableBlock::dim is an int: a wider dim would reach the caller negative.
  if (in.dim() == 0 || in.dim() > static_cast<uint32_t>(std::numeric_limits<int>::max()) ||
      !AppendDecodedArray(in.keys(), &block->keys) ||
      in.values().size() != block->keys.size() * in.dim() * sizeof(float) ||
      !AppendDecodedArray(in.values(), &block->values) ||
      !AppendDecodedArray(in.tombstones(), &block->tombstones)) {
    return records_->Corrupt(absl::StrCat("malformed block of table '", in.table(), "'"));
  }
  block->table = in.table();
  block->dim = static_cast<int>(in.dim());
  ++blocks_;
  rows_ += block->keys.size();
  tombstones_ += block->tombstones.size();
  return true;
}

}  // namespace granary
