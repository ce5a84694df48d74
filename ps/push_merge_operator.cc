#include "ps/push_merge_operator.h"

#include <string>
#include <utility>
#include <vector>

#include "glog/logging.h"
#include "ps/row_store.h"

namespace granary {
namespace {

class PushMergeOperator : public rocksdb::MergeOperator {
 public:
  PushMergeOperator(const proto::TableConfig& config, std::unique_ptr<Optimizer> optimizer)
      : config_(config),
        optimizer_(std::move(optimizer)),
        layout_(static_cast<int>(config.dim()), optimizer_->num_slots()) {}

  const char* Name() const override { return "granary.PushMergeOperator"; }

  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    const uint64_t key = RowStore::DecodeKey(in.key);
    const size_t row_bytes = layout_.row_bytes();
    const size_t operand_bytes = PushOperandBytes(layout_);
    if (in.existing_value != nullptr && in.existing_value->size() != row_bytes) {
      LOG(ERROR) << "table '" << config_.name() << "' key " << key << ": stored record has "
                 << in.existing_value->size() << " bytes, expected " << row_bytes;
      return false;  // RocksDB reports Corruption to the reader
    }
    // Aligned copies: RocksDB's bytes carry no alignment.
    thread_local std::vector<uint64_t> record_words;
    record_words.resize((row_bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    char* record = reinterpret_cast<char*>(record_words.data());
    if (in.existing_value != nullptr) {
      std::memcpy(record, in.existing_value->data(), row_bytes);
    } else {
      InitializeRecord(config_, *optimizer_, layout_, key, record);
    }
    for (const rocksdb::Slice& operand : in.operand_list) {
      if (operand.empty() || operand.size() % operand_bytes != 0) {
        LOG(ERROR) << "table '" << config_.name() << "' key " << key << ": push operand has "
                   << operand.size() << " bytes, expected a multiple of " << operand_bytes;
        return false;
      }
      for (size_t at = 0; at < operand.size(); at += operand_bytes) {
        ApplyPushOperand(*optimizer_, layout_, operand.data() + at, record);
      }
    }
    out->new_value.assign(record, row_bytes);
    return true;
  }

 private:
  const proto::TableConfig config_;
  const std::unique_ptr<Optimizer> optimizer_;
  const RowLayout layout_;
};

}  // namespace

void ApplyPushOperand(const Optimizer& optimizer, const RowLayout& layout, const char* operand,
                      char* record) {
  // Aligned copy: operand bytes (RocksDB's or a PushLog's) carry no alignment.
  thread_local std::vector<float> grad;
  const size_t dim = layout.dim();
  grad.resize(dim);
  PushOperandHeader header;
  std::memcpy(&header, operand, sizeof(header));
  std::memcpy(grad.data(), operand + sizeof(header), dim * sizeof(float));
  RowMeta* meta = layout.meta(record);
  StampPush(header.day, header.version, meta);
  const RowUpdate update{layout.values(record), layout.slots(record), meta, grad.data()};
  optimizer.Apply(absl::MakeConstSpan(&update, 1), layout.dim());
}

absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> NewPushMergeOperator(
    const proto::TableConfig& config) {
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeTableOptimizer(config);
  if (!optimizer.ok()) return optimizer.status();
  return std::make_shared<PushMergeOperator>(config, *std::move(optimizer));
}

}  // namespace granary
