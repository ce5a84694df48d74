// Pushes as RocksDB merge operands, and the merge operator that folds them into rows.
//
// A push to a row the cache does not hold need not read the row: EmbeddingTable writes the
// push (its gradient and the stamp it gives the row) as a merge operand, and RocksDB applies
// the table's optimizer when the row is next read or compacted. The result must be the very
// row a push to a cached row leaves (values, every optimizer slot, every metadata field), so
// the cache and the merge operator share the rules below: InitializeRecord for a row's first
// touch, StampPush for the metadata a push changes, ApplyPushOperand for the whole push.
//
// Operand format (little-endian like the row records, ps/row_layout.h): a PushOperandHeader,
// then dim floats of gradient. One RocksDB operand may hold several pushes of a key back to
// back, oldest first (a spilled PushLog writes all of a key's pushes as one).
//
// Thread-safe: the functions are pure but for the record they write; the merge operator is
// immutable, so RocksDB may call it from any of its threads at once.
#ifndef GRANARY_PS_PUSH_MERGE_OPERATOR_H_
#define GRANARY_PS_PUSH_MERGE_OPERATOR_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "ps/initializer.h"
#include "ps/optimizer.h"
#include "ps/row_layout.h"
#include "rocksdb/merge_operator.h"

namespace granary {

// The start of a push operand: the stamp the push gives the row.
struct PushOperandHeader {
  uint32_t day;
  uint32_t reserved;  // zero
  uint64_t version;
};
static_assert(sizeof(PushOperandHeader) == 16, "a push operand's header is part of the format");

// Bytes of one push operand of a row of `layout`.
inline size_t PushOperandBytes(const RowLayout& layout) {
  return sizeof(PushOperandHeader) + layout.dim() * sizeof(float);
}

// Writes the operand of a push of `grad` (dim floats) stamped (day, version) to `operand`
// (PushOperandBytes, no alignment needed).
inline void EncodePushOperand(uint32_t day, uint64_t version, const float* grad, int dim,
                              char* operand) {
  const PushOperandHeader header{day, 0, version};
  std::memcpy(operand, &header, sizeof(header));
  std::memcpy(operand + sizeof(header), grad, dim * sizeof(float));
}

// The metadata change of one push, whether applied in the cache or by the merge operator.
inline void StampPush(uint32_t day, uint64_t version, RowMeta* meta) {
  meta->show_count += 1;
  meta->last_day = day;
  meta->update_count += 1;
  meta->version = version;
}

// Writes the record of a row on first touch: zero metadata, the initializer's values of
// `key`, the optimizer's slots for them. REQUIRES: `record` is row_bytes, aligned for RowMeta.
// Inline: the cache calls it for every row it creates.
inline void InitializeRecord(const proto::TableConfig& config, const Optimizer& optimizer,
                             const RowLayout& layout, uint64_t key, char* record) {
  *layout.meta(record) = RowMeta();
  InitializeRow(config.initializer(), key, layout.dim(), layout.values(record));
  optimizer.InitSlots(layout.values(record), layout.slots(record), layout.dim());
}

// Applies one push operand (`operand`, PushOperandBytes, any alignment) to `record`: its
// stamp and its optimizer update, exactly what a push does to a cached row (including an
// update the optimizer refuses, which stamps the row but leaves its values). Allocates only
// the first time a thread applies an operand of a larger dim than before. REQUIRES: `record`
// as for InitializeRecord.
void ApplyPushOperand(const Optimizer& optimizer, const RowLayout& layout, const char* operand,
                      char* record);

// The merge operator a RowStore must hold for a table of `config` (RowStoreOptions::
// merge_operators, keyed by config.name()) to fold the table's push operands into its rows:
// the stored record, or a new row's (InitializeRecord) if there is none, then each push in
// order. A stored record or an operand of the wrong size fails the merge (logged naming the
// table and key), which RocksDB reports to the reader as Corruption. InvalidArgument naming
// the table if the config has no optimizer.
absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> NewPushMergeOperator(
    const proto::TableConfig& config);

}  // namespace granary

#endif  // GRANARY_PS_PUSH_MERGE_OPERATOR_H_
