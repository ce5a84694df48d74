// RowLayout: the bytes of one embedding row, identical in the RowCache and in RocksDB.
//
//   RowMeta (24 bytes) | values: float[dim] | optimizer slots: float[num_slots * dim]
//
// Values, every optimizer slot and the metadata of a row live in one record, so a row can
// never be stored or restored with slots from another moment than its values. All fields
// are little-endian (the only byte order Granary runs on; checked at compile time).
//
// Thread-safe: a layout is an immutable value; the row bytes are the caller's to guard.
#ifndef GRANARY_PS_ROW_LAYOUT_H_
#define GRANARY_PS_ROW_LAYOUT_H_

#include <cstddef>
#include <cstdint>

namespace granary {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "row records are little-endian");

struct RowMeta {
  // Pushes that touched the row, decayed at each day close (see Shrink).
  float show_count = 0;
  // Training day (as set on the server) when a push last touched the row.
  uint32_t last_day = 0;
  // Pushes applied to the row.
  uint32_t update_count = 0;
  // The optimizer's step count t of this row (Adam's bias correction).
  uint32_t step = 0;
  // Data version of the row's last change; ExportDelta(since) selects version > since.
  uint64_t version = 0;
};
static_assert(sizeof(RowMeta) == 24, "RowMeta is part of the on-disk format");

class RowLayout {
 public:
  RowLayout(int dim, int num_slots) : dim_(dim), num_slots_(num_slots) {}

  int dim() const { return dim_; }
  int num_slots() const { return num_slots_; }
  size_t row_bytes() const {
    return sizeof(RowMeta) + sizeof(float) * static_cast<size_t>(dim_) * (1 + num_slots_);
  }

  // REQUIRES: `row` points at row_bytes() bytes aligned for RowMeta.
  RowMeta* meta(char* row) const { return reinterpret_cast<RowMeta*>(row); }
  float* values(char* row) const { return reinterpret_cast<float*>(row + sizeof(RowMeta)); }
  float* slots(char* row) const { return values(row) + dim_; }
  const RowMeta* meta(const char* row) const { return reinterpret_cast<const RowMeta*>(row); }
  const float* values(const char* row) const {
    return reinterpret_cast<const float*>(row + sizeof(RowMeta));
  }
  const float* slots(const char* row) const { return values(row) + dim_; }

 private:
  int dim_;
  int num_slots_;
};

}  // namespace granary

#endif  // GRANARY_PS_ROW_LAYOUT_H_
