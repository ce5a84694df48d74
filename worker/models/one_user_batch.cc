#include "worker/models/one_user_batch.h"

#include <algorithm>

namespace granary {

bool SameRowsForEverySample(const std::vector<SlotRows>& slots) {
  for (const SlotRows& slot : slots) {
    const int32_t width = slot.offsets[1] - slot.offsets[0];
    for (size_t b = 1; b + 1 < slot.offsets.size(); ++b) {
      if (slot.offsets[b + 1] - slot.offsets[b] != width) return false;
      if (!std::equal(slot.row_ids.begin() + slot.offsets[b],
                      slot.row_ids.begin() + slot.offsets[b + 1], slot.row_ids.begin())) {
        return false;
      }
    }
  }
  return true;
}

void FirstSampleRows(const std::vector<SlotRows>& slots, std::vector<SlotRows>* first) {
  first->resize(slots.size());
  for (size_t s = 0; s < slots.size(); ++s) {
    const SlotRows& slot = slots[s];
    SlotRows& one = (*first)[s];
    one.offsets.assign({0, slot.offsets[1] - slot.offsets[0]});
    one.row_ids.assign(slot.row_ids.begin() + slot.offsets[0],
                       slot.row_ids.begin() + slot.offsets[1]);
  }
}

}  // namespace granary
