// What the serving unit tests start from: a model folder of one closed day whose base holds
// the rows a test writes, opened as a ModelBundle.
#ifndef GRANARY_TESTS_WORKER_SERVE_ONE_DAY_MODEL_H_
#define GRANARY_TESTS_WORKER_SERVE_ONE_DAY_MODEL_H_

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "common/model_bundle.h"

namespace granary {

// Writes a delta file of the base's rows to the path it is given.
using WriteBaseRows = std::function<absl::Status(const std::string& path)>;

// Makes <root>/model with day 20261101 closed (MANIFEST id 1, a close report listing the day's
// delta, which `write_rows` writes) and opens it, the bundle's base export writing the same rows.
inline absl::StatusOr<std::unique_ptr<ModelBundle>> OpenOneDayModel(const std::string& root,
                                                                    WriteBaseRows write_rows) {
  namespace fs = std::filesystem;
  const std::string model_dir = root + "/model";
  const std::string day = "20261101";
  fs::create_directories(model_dir + "/deltas/" + day);
  fs::create_directories(model_dir + "/bases/" + day + "/server-0");
  fs::create_directories(model_dir + "/reports");
  std::ofstream(model_dir + "/bases/" + day + "/MANIFEST") << "id: 1\n";
  const std::string delta = model_dir + "/deltas/" + day + "/server-0.delta";
  if (absl::Status written = write_rows(delta); !written.ok()) return written;
  std::ofstream(model_dir + "/reports/" + day + ".close.json") << absl::StrFormat(
      R"({"base_manifest_id": 1, "delta": {"files": [{"path": "server-0.delta", "bytes": %d}]}})",
      fs::file_size(delta));
  ModelBundleOptions options;
  options.model_dir = model_dir;
  options.scratch_dir = root + "/scratch";
  options.export_base_shard = [write_rows = std::move(write_rows)](const std::string&, int,
                                                                   const std::string& path) {
    return write_rows(path);
  };
  return ModelBundle::Open(options);
}

}  // namespace granary

#endif  // GRANARY_TESTS_WORKER_SERVE_ONE_DAY_MODEL_H_
