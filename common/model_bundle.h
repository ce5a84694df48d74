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
// Tables larger than memory (ModelBundleOptions.tables = ServedTables::kRocksDb): each served
// table reads the base's rows in place, through one BaseShardRows per server folder
// (common/base_shard_rows.h; RocksDB opened read-only), routing a key to its server by the shard
// map in the base's MANIFEST (the map the base was written with). Only the deltas applied since
// the base are held in memory, as an overlay of upserts and tombstones in front of the base,
// published per day exactly as in memory; when a later day's base verifies, the bundle serves
// that base instead, with an empty overlay, rather than adding the day's delta to the overlay.
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
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/base_shard_rows.h"

namespace granary {

class BaseTableRows;  // a table's rows in a base read in place (model_bundle.cc)

// One table's rows as served. Immutable once published; thread-safe.
class ServedTable {
 public:
  explicit ServedTable(int dim) : dim_(dim) {}

  int dim() const { return dim_; }
  // Rows held in memory: all of them, or with a base read in place the rows of the overlay.
  size_t size() const { return slot_of_key_.size(); }
  // The dim() values of `key`'s row, or null if the table has no such row. Valid while the
  // table is alive; with a base read in place, a row from the base only until this thread's
  // next Find (and null if the base cannot be read: Read reports why).
  const float* Find(uint64_t key) const;
  // For each keys[i] with a row, writes its dim() values to rows[i * dim, (i + 1) * dim);
  // leaves the rows of keys without one untouched. With a base read in place, the keys the
  // overlay does not answer are read from the base in one batch per server; the base's error
  // (naming the table and folder) if it cannot be read.
  absl::Status Read(absl::Span<const uint64_t> keys, float* rows) const;

 private:
  friend class ServedTableBuilder;
  int dim_;
  absl::flat_hash_map<uint64_t, uint32_t> slot_of_key_;
  std::vector<float> values_;  // slot s holds values_[s * dim, (s + 1) * dim)
  // With a base read in place: the base, and the keys a delta since deleted from it.
  std::shared_ptr<const BaseTableRows> base_;
  absl::flat_hash_set<uint64_t> tombstones_;
};

// Where a bundle's tables are held (granary_serve --tables).
enum class ServedTables {
  kMemory,   // every row in memory
  kRocksDb,  // the base read in place through RocksDB, the deltas since in memory
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
  // file at `delta_path` (common/delta_file.h). Required for ServedTables::kMemory.
  std::function<absl::Status(const std::string& shard_dir, int rank, const std::string& delta_path)>
      export_base_shard;
  // Where the tables are held; kRocksDb needs open_base_shard instead of export_base_shard.
  ServedTables tables = ServedTables::kMemory;
  // Opens the base shard folder `shard_dir` (bases/<day>/server-<rank>) for reading in place.
  // Required for ServedTables::kRocksDb.
  std::function<absl::StatusOr<std::unique_ptr<BaseShardRows>>(const std::string& shard_dir,
                                                               int rank)>
      open_base_shard;
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
  // Fills `model`'s tables from bases/<day> (of `num_servers` shards), per options_.tables.
  absl::Status LoadBase(const std::string& day, int num_servers, ServedModel* model) const;

  const ModelBundleOptions options_;
  // Each server's version the served model is at: the until_version of its last delta applied
  // (of the base's day at first). Used by ApplyNewDeltas' thread only.
  absl::flat_hash_map<int, uint64_t> until_version_of_server_;
  mutable std::mutex mutex_;  // guards current_ (the pointer, not the model)
  std::shared_ptr<const ServedModel> current_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_MODEL_BUNDLE_H_
