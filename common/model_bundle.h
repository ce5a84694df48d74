// ModelBundle: a daily model folder (launch/daily.sh: bases/<day>, deltas/<day>,
// reports/<day>.close.json) read into memory for serving: the newest verified base, then the
// deltas of the days closed after it, applied in day order.
//
//   ModelBundleOptions options;
//   options.model_dir = "model";
//   options.export_base_shard = ...;  // the parameter server's reader (ps/base_export.h)
//   absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options);
//   (*bundle)->ApplyNewDeltas();                 // now and whenever new days may have closed
//   std::shared_ptr<const ServedModel> model = (*bundle)->Current();
//   const float* row = model->table("emb")->Find(key);  // null: no such row
//
// A base is a RocksDB checkpoint in the parameter server's row format, which only ps/ knows
// (DESIGN.md layering: common/ depends on no role), so the bundle asks `export_base_shard` to
// write each server's shard of the base as a delta file holding every row (a full export) and
// reads that with DeltaReader, the one reader of rows outside ps/.
//
// What counts as closed is what daily.sh verifies: a day is closed once its close report
// (written last by the scheduler) parses, and the report lists one delta file per server, each
// in deltas/<day>/ with the listed size; its base additionally holds the MANIFEST with the
// report's base_manifest_id and one server-<rank> folder per delta file.
//
// Versions are immutable: ApplyNewDeltas reads a whole day's delta files, then publishes a new
// ServedModel that shares the tables the day did not touch, so a reader holding Current() never
// sees part of a day. A day's delta that is missing, truncated, corrupt or of another size than
// its report says is refused with an error naming the file; the current version stays, and
// later days wait behind it (a delta holds the changes since the day before). So is a delta
// whose since_version is not the version the served model is at for its server (a day between
// missing, or a served day closed again with --force): only a restart loads that newer base.
//
// Rows only: optimizer state is not exported. A key without a row has no served values; the
// caller decides what it reads as (granary_serve: zeros, docs/operations.md "Serving").
//
// Thread-safe: Current() from any thread at any time; ApplyNewDeltas from one thread at a time.
#ifndef GRANARY_COMMON_MODEL_BUNDLE_H_
#define GRANARY_COMMON_MODEL_BUNDLE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace granary {

// One table's rows as served. Immutable once published; thread-safe.
class ServedTable {
 public:
  explicit ServedTable(int dim) : dim_(dim) {}

  int dim() const { return dim_; }
  size_t size() const { return slot_of_key_.size(); }
  // The dim() values of `key`'s row, or null if the table has no such row. Valid while the
  // table is alive.
  const float* Find(uint64_t key) const {
    auto it = slot_of_key_.find(key);
    return it == slot_of_key_.end() ? nullptr : values_.data() + size_t{it->second} * dim_;
  }

 private:
  friend class ServedTableBuilder;
  int dim_;
  absl::flat_hash_map<uint64_t, uint32_t> slot_of_key_;
  std::vector<float> values_;  // slot s holds values_[s * dim, (s + 1) * dim)
};

// Which days a served model holds.
struct ServedVersion {
  std::string base_day;   // the base loaded (YYYYMMDD)
  std::string delta_day;  // the last day whose delta was applied since; empty if none
  // The newest day the model includes: delta_day, else base_day.
  const std::string& day() const { return delta_day.empty() ? base_day : delta_day; }
};

// One immutable version of the model: every table's rows. Thread-safe.
class ServedModel {
 public:
  // The table named `name`, or null if neither the base nor a delta had it.
  const ServedTable* table(const std::string& name) const {
    auto it = tables_.find(name);
    return it == tables_.end() ? nullptr : it->second.get();
  }
  const ServedVersion& version() const { return version_; }

 private:
  friend class ModelBundle;
  ServedVersion version_;
  absl::flat_hash_map<std::string, std::shared_ptr<const ServedTable>> tables_;
};

struct ModelBundleOptions {
  // The daily model folder (launch/daily.sh --model_dir).
  std::string model_dir;
  // Writes every row of the base shard folder `shard_dir` (bases/<day>/server-<rank>) to a delta
  // file at `delta_path` (common/delta_file.h). Required.
  std::function<absl::Status(const std::string& shard_dir, int rank, const std::string& delta_path)>
      export_base_shard;
  // Where the base exports are written (and removed once read). Empty: a fresh folder under
  // the system's temporary directory.
  std::string scratch_dir;
};

class ModelBundle {
 public:
  // Loads the newest base whose close verifies (see the top; older bases are tried when a
  // newer one does not verify). NotFound naming the folder if no day's close verifies (each
  // day's reason is in the message); the error of export_base_shard or DataLoss naming the file
  // if a shard cannot be read. Deltas of later days are not applied yet: ApplyNewDeltas does.
  static absl::StatusOr<std::unique_ptr<ModelBundle>> Open(const ModelBundleOptions& options);

  // One table's rows made in memory, for InMemory.
  struct InMemoryTable {
    std::string name;
    int dim = 0;
    std::vector<uint64_t> keys;
    std::vector<float> values;  // keys.size() * dim, key i's row at [i * dim, (i + 1) * dim)
  };
  // A bundle serving `tables` as `version`, with no model folder behind it (ApplyNewDeltas
  // applies nothing): what benchmarks and tests serve without training. InvalidArgument naming
  // the table if its dim is not positive or its values are not keys.size() * dim.
  static absl::StatusOr<std::unique_ptr<ModelBundle>> InMemory(
      ServedVersion version, const std::vector<InMemoryTable>& tables);
  ModelBundle(const ModelBundle&) = delete;
  ModelBundle& operator=(const ModelBundle&) = delete;

  // The version being served; never null.
  std::shared_ptr<const ServedModel> Current() const;

  // Applies, in day order, the delta of every day after Current()'s newest day whose close
  // report is there (reports/<day>.close.json), each day published whole. Returns the number
  // of days applied; if a day's close report or delta is refused, the days before it stay
  // applied and the error names the report or delta file (NotFound, DataLoss; FailedPrecondition
  // if it does not start where the served model is).
  absl::StatusOr<int> ApplyNewDeltas();

 private:
  explicit ModelBundle(ModelBundleOptions options) : options_(std::move(options)) {}
  absl::Status ApplyDay(const std::string& day);

  const ModelBundleOptions options_;
  // Each server's version the served model is at: the until_version of its last delta applied
  // (of the base's day at first). Used by ApplyNewDeltas' thread only.
  absl::flat_hash_map<int, uint64_t> until_version_of_server_;
  mutable std::mutex mutex_;  // guards current_ (the pointer, not the model)
  std::shared_ptr<const ServedModel> current_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_MODEL_BUNDLE_H_
