// JSON output shared by the benchmarks (--json=PATH): one object per table row, written by
// hand because the rows are flat and the format is fixed.
// Thread-compatible: pure functions and a file write.
#ifndef GRANARY_TESTS_BENCH_BENCH_JSON_H_
#define GRANARY_TESTS_BENCH_BENCH_JSON_H_

#include <cstddef>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace granary {

// A measured figure, or null when it was not measured (zero or negative).
inline std::string JsonNumberOrNull(double value) {
  return value > 0 ? absl::StrFormat("%.6g", value) : "null";
}

// Writes `objects` (each a JSON object's text) to `path` as one JSON array.
inline absl::Status WriteJsonArray(const std::string& path,
                                   const std::vector<std::string>& objects) {
  std::ofstream out(path);
  out << "[\n" << absl::StrJoin(objects, ",\n") << "\n]\n";
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// The end of a benchmark's table: prints "<rows> rows in <seconds> s" and, unless `json_path` is
// empty, writes `objects` (one per row) there (WriteJsonArray).
inline absl::Status FinishTable(size_t rows, double seconds, const std::string& json_path,
                                const std::vector<std::string>& objects) {
  absl::PrintF("\n%zu rows in %.1f s\n", rows, seconds);
  if (json_path.empty()) return absl::OkStatus();
  return WriteJsonArray(json_path, objects);
}

}  // namespace granary

#endif  // GRANARY_TESTS_BENCH_BENCH_JSON_H_
