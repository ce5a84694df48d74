// ServedRows: one table's rows as a serving copy holds them after applying day deltas
// (common/delta_file.h) in order, for tests that check base + deltas == the trained model.
#ifndef GRANARY_TESTS_TESTING_SERVED_ROWS_H_
#define GRANARY_TESTS_TESTING_SERVED_ROWS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace granary {

// Row values by key.
using ServedRows = std::map<uint64_t, std::vector<float>>;

// Applies every delta file in `day_dir` (one per server) to *rows: the changed rows of table
// `table` replace or add rows, its tombstones erase them; other tables are skipped. Returns how
// many files it read; NotFound or DataLoss naming the folder or file on failure.
absl::StatusOr<int> ApplyDayDeltas(const std::string& day_dir, const std::string& table,
                                   ServedRows* rows);

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_SERVED_ROWS_H_
