#include "common/model_bundle.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/delta_file.h"
#include "common/proto/message.pb.h"
#include "common/proto/serve.pb.h"
#include "common/shard_map.h"
#include "glog/logging.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace granary {

// A base read in place: each server's shard, and the shard map the base was written with.
struct BaseRows {
  std::string dir;  // bases/<day>
  ShardMap shard_map;
  std::vector<std::unique_ptr<BaseShardRows>> shards;  // by rank
};

// One table of a BaseRows: routes each key to the server that owns it.
class BaseTableRows {
 public:
  BaseTableRows(std::shared_ptr<const BaseRows> base, std::string table, int dim)
      : base_(std::move(base)), table_(std::move(table)), dim_(dim) {}

  // As BaseShardRows::Read, over every server: one batched read per server holding keys.
  absl::Status Read(absl::Span<const uint64_t> keys, float* rows, bool* found) const {
    const size_t num_servers = base_->shards.size();
    // Per-thread buffers, grown to the largest request and reused: no allocation per row.
    thread_local std::vector<std::vector<uint64_t>> keys_of_server;
    thread_local std::vector<std::vector<size_t>> index_of_server;
    thread_local std::vector<float> server_rows;
    thread_local std::unique_ptr<bool[]> server_found;
    thread_local size_t server_found_capacity = 0;
    keys_of_server.resize(std::max(keys_of_server.size(), num_servers));
    index_of_server.resize(std::max(index_of_server.size(), num_servers));
    for (size_t s = 0; s < num_servers; ++s) {
      keys_of_server[s].clear();
      index_of_server[s].clear();
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      found[i] = false;
      const size_t server = static_cast<size_t>(base_->shard_map.ServerForKey(keys[i]));
      if (server >= num_servers) continue;  // checked at open: every rank has a shard
      keys_of_server[server].push_back(keys[i]);
      index_of_server[server].push_back(i);
    }
    const size_t dim = static_cast<size_t>(dim_);
    for (size_t s = 0; s < num_servers; ++s) {
      const std::vector<uint64_t>& server_keys = keys_of_server[s];
      if (server_keys.empty()) continue;
      server_rows.resize(server_keys.size() * dim);
      if (server_found_capacity < server_keys.size()) {
        server_found_capacity = server_keys.size();
        server_found = std::make_unique<bool[]>(server_found_capacity);
      }
      absl::Status status =
          base_->shards[s]->Read(table_, server_keys, server_rows.data(), server_found.get());
      if (!status.ok()) return status;
      for (size_t j = 0; j < server_keys.size(); ++j) {
        if (!server_found[j]) continue;
        const size_t i = index_of_server[s][j];
        found[i] = true;
        std::copy(server_rows.begin() + j * dim, server_rows.begin() + (j + 1) * dim,
                  rows + i * dim);
      }
    }
    return absl::OkStatus();
  }

 private:
  const std::shared_ptr<const BaseRows> base_;
  const std::string table_;
  const int dim_;
};

const float* ServedTable::Find(uint64_t key) const {
  auto it = slot_of_key_.find(key);
  if (it != slot_of_key_.end()) return values_.data() + size_t{it->second} * dim_;
  if (base_ == nullptr || tombstones_.contains(key)) return nullptr;
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(dim_));
  bool found = false;
  absl::Status status = base_->Read(absl::MakeConstSpan(&key, 1), row.data(), &found);
  if (!status.ok()) LOG(ERROR) << status;
  return found ? row.data() : nullptr;
}

absl::Status ServedTable::Read(absl::Span<const uint64_t> keys, float* rows) const {
  const size_t dim = static_cast<size_t>(dim_);
  // The keys the overlay does not answer, read from the base at once.
  thread_local std::vector<uint64_t> base_keys;
  thread_local std::vector<size_t> base_index;
  base_keys.clear();
  base_index.clear();
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = slot_of_key_.find(keys[i]);
    if (it != slot_of_key_.end()) {
      const float* row = values_.data() + size_t{it->second} * dim;
      std::copy(row, row + dim, rows + i * dim);
    } else if (base_ != nullptr && !tombstones_.contains(keys[i])) {
      base_keys.push_back(keys[i]);
      base_index.push_back(i);
    }
  }
  if (base_keys.empty()) return absl::OkStatus();
  thread_local std::vector<float> base_rows;
  thread_local std::unique_ptr<bool[]> base_found;
  thread_local size_t base_found_capacity = 0;
  base_rows.resize(base_keys.size() * dim);
  if (base_found_capacity < base_keys.size()) {
    base_found_capacity = base_keys.size();
    base_found = std::make_unique<bool[]>(base_found_capacity);
  }
  absl::Status status = base_->Read(base_keys, base_rows.data(), base_found.get());
  if (!status.ok()) return status;
  for (size_t j = 0; j < base_keys.size(); ++j) {
    if (!base_found[j]) continue;
    std::copy(base_rows.begin() + j * dim, base_rows.begin() + (j + 1) * dim,
              rows + base_index[j] * dim);
  }
  return absl::OkStatus();
}

// Builds one new table version: the live rows of the version before (if any), then the changes
// of a day. Holes left by deleted rows are dropped at the next copy.
class ServedTableBuilder {
 public:
  explicit ServedTableBuilder(int dim) : table_(std::make_shared<ServedTable>(dim)) {}
  // A table whose rows are `base`'s, with an empty overlay.
  explicit ServedTableBuilder(std::shared_ptr<const BaseTableRows> base, int dim)
      : table_(std::make_shared<ServedTable>(dim)) {
    table_->base_ = std::move(base);
  }
  ServedTableBuilder(const ServedTable& previous)
      : table_(std::make_shared<ServedTable>(previous.dim())) {
    ServedTable& table = *table_;
    table.base_ = previous.base_;
    table.tombstones_ = previous.tombstones_;
    const size_t dim = static_cast<size_t>(table.dim_);
    table.slot_of_key_.reserve(previous.slot_of_key_.size());
    table.values_.reserve(previous.slot_of_key_.size() * dim);
    for (const auto& [key, slot] : previous.slot_of_key_) {
      const float* row = previous.values_.data() + size_t{slot} * dim;
      table.slot_of_key_.emplace(key, static_cast<uint32_t>(table.values_.size() / dim));
      table.values_.insert(table.values_.end(), row, row + dim);
    }
  }

  int dim() const { return table_->dim_; }

  void Upsert(uint64_t key, const float* values) {
    ServedTable& table = *table_;
    const size_t dim = static_cast<size_t>(table.dim_);
    auto [it, added] =
        table.slot_of_key_.emplace(key, static_cast<uint32_t>(table.values_.size() / dim));
    if (added) {
      table.values_.insert(table.values_.end(), values, values + dim);
    } else {
      std::copy(values, values + dim, table.values_.begin() + size_t{it->second} * dim);
    }
    if (table.base_ != nullptr) table.tombstones_.erase(key);
  }
  void Erase(uint64_t key) {
    table_->slot_of_key_.erase(key);
    // The base's row stays on disk: the tombstone hides it.
    if (table_->base_ != nullptr) table_->tombstones_.insert(key);
  }

  std::shared_ptr<const ServedTable> Finish() { return std::move(table_); }

 private:
  std::shared_ptr<ServedTable> table_;
};

namespace {

namespace fs = std::filesystem;

constexpr char kCloseReportSuffix[] = ".close.json";

// The whole of a small file; NotFound naming it if it cannot be read.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string CloseReportPath(const std::string& model_dir, const std::string& day) {
  return absl::StrCat(model_dir, "/reports/", day, kCloseReportSuffix);
}

// The days with a close report in <model_dir>/reports, oldest first.
std::vector<std::string> ClosedDays(const std::string& model_dir) {
  std::vector<std::string> days;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(model_dir + "/reports", error)) {
    const std::string name = entry.path().filename().string();
    absl::string_view day = name;
    // Temporary files of an atomic write end otherwise and are skipped.
    if (absl::ConsumeSuffix(&day, kCloseReportSuffix)) days.emplace_back(day);
  }
  std::sort(days.begin(), days.end());
  return days;
}

// A day's close report, with each delta file's path made <model_dir>/deltas/<day>/<name> (the
// folder may have moved since the close) and checked present with the listed size.
absl::StatusOr<proto::CloseReport> ReadCloseReport(const std::string& model_dir,
                                                   const std::string& day) {
  const std::string path = CloseReportPath(model_dir, day);
  absl::StatusOr<std::string> json = ReadSmallFile(path);
  if (!json.ok()) return json.status();
  proto::CloseReport report;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(*json, &report, options);
  if (!parsed.ok()) {
    return absl::DataLossError(
        absl::StrCat("close report ", path, " does not parse: ", parsed.ToString()));
  }
  if (report.delta().files().empty()) {
    return absl::DataLossError(absl::StrCat("close report ", path, " lists no delta file"));
  }
  for (proto::CloseReportFile& file : *report.mutable_delta()->mutable_files()) {
    file.set_path(
        absl::StrCat(model_dir, "/deltas/", day, "/", fs::path(file.path()).filename().string()));
    std::error_code error;
    const uintmax_t bytes = fs::file_size(file.path(), error);
    if (error) {
      return absl::NotFoundError(absl::StrCat("delta file ", file.path(), " listed by ", path,
                                              " is missing: ", error.message()));
    }
    if (bytes != file.bytes()) {
      return absl::DataLossError(absl::StrCat("delta file ", file.path(), " has ", bytes,
                                              " bytes, the close report ", path, " says ",
                                              file.bytes()));
    }
  }
  return report;
}

// OK if bases/<day> is the base `report` closed: its MANIFEST has the report's manifest id and
// it holds one server-<rank> per delta file.
absl::Status VerifyBase(const std::string& model_dir, const std::string& day,
                        const proto::CloseReport& report) {
  const std::string base = absl::StrCat(model_dir, "/bases/", day);
  absl::StatusOr<std::string> manifest = ReadSmallFile(base + "/MANIFEST");
  if (!manifest.ok()) return absl::NotFoundError(absl::StrCat("base ", base, " has no MANIFEST"));
  const std::string id_line = absl::StrCat("id: ", report.base_manifest_id());
  bool found = false;
  for (absl::string_view line : absl::StrSplit(*manifest, '\n')) found |= line == id_line;
  if (!found) {
    return absl::DataLossError(absl::StrCat("base ", base, "/MANIFEST is not manifest ",
                                            report.base_manifest_id(), " of its close report"));
  }
  for (int rank = 0; rank < report.delta().files_size(); ++rank) {
    const std::string shard = absl::StrCat(base, "/server-", rank);
    if (!fs::is_directory(shard)) return absl::NotFoundError(absl::StrCat("base has no ", shard));
  }
  return absl::OkStatus();
}

// The changes of one delta file (or a full export), read whole and verified before any of it
// is applied.
struct DayChanges {
  std::vector<DeltaTableBlock> blocks;
};

// Reads the delta file at `path` into *changes; returns its header.
absl::StatusOr<proto::DeltaHeader> ReadDelta(const std::string& path, DayChanges* changes) {
  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(path);
  if (!reader.ok()) return reader.status();
  while (true) {
    DeltaTableBlock block;
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    if (!more.ok()) return more.status();
    if (!*more) return (*reader)->header();
    changes->blocks.push_back(std::move(block));
  }
}

// `tables` with `changes` applied: a copy of each table they touch (tombstones honoured unless
// `rows_only`, for a full export whose tombstones are history). DataLoss naming `source` if a
// block's dim differs from its table's.
absl::Status ApplyChanges(
    const DayChanges& changes, bool rows_only, const std::string& source,
    absl::flat_hash_map<std::string, std::shared_ptr<const ServedTable>>* tables) {
  absl::flat_hash_map<std::string, std::unique_ptr<ServedTableBuilder>> builders;
  for (const DeltaTableBlock& block : changes.blocks) {
    std::unique_ptr<ServedTableBuilder>& builder = builders[block.table];
    if (builder == nullptr) {
      auto old = tables->find(block.table);
      builder = old == tables->end() ? std::make_unique<ServedTableBuilder>(block.dim)
                                     : std::make_unique<ServedTableBuilder>(*old->second);
    }
    if (builder->dim() != block.dim) {
      return absl::DataLossError(absl::StrCat(source, ": table '", block.table, "' has dim ",
                                              block.dim, ", the model has ", builder->dim()));
    }
    for (size_t i = 0; i < block.keys.size(); ++i) {
      builder->Upsert(block.keys[i], block.values.data() + i * block.dim);
    }
    if (!rows_only) {
      for (uint64_t key : block.tombstones) builder->Erase(key);
    }
  }
  for (auto& [name, builder] : builders) (*tables)[name] = builder->Finish();
  return absl::OkStatus();
}

}  // namespace

absl::Status ModelBundle::LoadBase(const std::string& day, int num_servers,
                                   ServedModel* model) const {
  const ModelBundleOptions& options = options_;
  const std::string base = absl::StrCat(options.model_dir, "/bases/", day);
  if (options.tables == ServedTables::kRocksDb) {
    auto rows = std::make_shared<BaseRows>();
    rows->dir = base;
    // Keys go to the server the base's shard map gives them: the map it was written with.
    const std::string manifest_path = base + "/MANIFEST";
    absl::StatusOr<std::string> text = ReadSmallFile(manifest_path);
    if (!text.ok()) return text.status();
    proto::CheckpointManifest manifest;
    google::protobuf::TextFormat::Parser parser;
    parser.AllowUnknownField(true);
    if (!parser.ParseFromString(*text, &manifest)) {
      return absl::DataLossError(absl::StrCat("base ", manifest_path, " does not parse"));
    }
    absl::StatusOr<ShardMap> shard_map = ShardMap::FromProto(manifest.shard_map());
    if (!shard_map.ok()) {
      return absl::DataLossError(absl::StrCat(
          "base ", manifest_path, " has no valid shard map: ", shard_map.status().message()));
    }
    if (shard_map->num_servers() > num_servers) {
      return absl::DataLossError(
          absl::StrCat("base ", manifest_path, "'s shard map names ", shard_map->num_servers(),
                       " servers, the close report ", num_servers, " shards"));
    }
    rows->shard_map = *std::move(shard_map);
    for (int rank = 0; rank < num_servers; ++rank) {
      const std::string shard = absl::StrCat(base, "/server-", rank);
      absl::StatusOr<std::unique_ptr<BaseShardRows>> opened = options.open_base_shard(shard, rank);
      if (!opened.ok()) return opened.status();
      rows->shards.push_back(*std::move(opened));
    }
    absl::flat_hash_map<std::string, int> dim_of_table;
    for (const std::unique_ptr<BaseShardRows>& shard : rows->shards) {
      for (const std::string& table : shard->tables()) dim_of_table[table] = shard->dim(table);
    }
    std::shared_ptr<const BaseRows> shared = std::move(rows);
    for (const auto& [table, dim] : dim_of_table) {
      ServedTableBuilder builder(std::make_shared<BaseTableRows>(shared, table, dim), dim);
      model->tables_[table] = builder.Finish();
    }
    return absl::OkStatus();
  }
  std::string scratch = options.scratch_dir;
  if (scratch.empty()) {
    scratch = (fs::temp_directory_path() / absl::StrCat("granary-bundle-", getpid())).string();
  }
  std::error_code error;
  fs::create_directories(scratch, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the scratch folder ", scratch, ": ", error.message()));
  }
  for (int rank = 0; rank < num_servers; ++rank) {
    const std::string shard = absl::StrCat(base, "/server-", rank);
    const std::string exported = absl::StrCat(scratch, "/base-", day, "-server-", rank, ".delta");
    absl::Status status = options.export_base_shard(shard, rank, exported);
    DayChanges rows;
    if (status.ok()) status = ReadDelta(exported, &rows).status();
    fs::remove(exported, error);
    if (status.ok()) status = ApplyChanges(rows, /*rows_only=*/true, shard, &model->tables_);
    if (!status.ok()) return status;
  }
  if (options.scratch_dir.empty()) fs::remove_all(scratch, error);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ModelBundle>> ModelBundle::Open(const ModelBundleOptions& options) {
  if (options.tables == ServedTables::kMemory && !options.export_base_shard) {
    return absl::InvalidArgumentError("ModelBundleOptions.export_base_shard is required");
  }
  if (options.tables == ServedTables::kRocksDb && !options.open_base_shard) {
    return absl::InvalidArgumentError(
        "ModelBundleOptions.open_base_shard is required for ServedTables::kRocksDb");
  }
  std::unique_ptr<ModelBundle> bundle(new ModelBundle(options));
  std::vector<std::string> days = ClosedDays(options.model_dir);
  std::string reasons;
  for (auto day = days.rbegin(); day != days.rend(); ++day) {
    absl::StatusOr<proto::CloseReport> report = ReadCloseReport(options.model_dir, *day);
    absl::Status verified =
        report.ok() ? VerifyBase(options.model_dir, *day, *report) : report.status();
    if (!verified.ok()) {
      LOG(WARNING) << "day " << *day << " is not a base to serve: " << verified;
      absl::StrAppend(&reasons, "; day ", *day, ": ", verified.message());
      continue;
    }
    auto model = std::make_shared<ServedModel>();
    model->version_.base_day = *day;
    absl::Status loaded = bundle->LoadBase(*day, report->delta().files_size(), model.get());
    if (!loaded.ok()) return loaded;
    // Where each server's next delta must start: where the base day's delta ended.
    for (const proto::CloseReportFile& file : report->delta().files()) {
      absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(file.path());
      if (!reader.ok()) return reader.status();
      bundle->until_version_of_server_[(*reader)->header().server_rank()] =
          (*reader)->header().until_version();
    }
    LOG(INFO) << "serving base " << options.model_dir << "/bases/" << *day;
    bundle->current_ = std::move(model);
    return bundle;
  }
  return absl::NotFoundError(
      absl::StrCat("no verified base to serve in ", options.model_dir, reasons));
}

absl::StatusOr<std::unique_ptr<ModelBundle>> ModelBundle::InMemory(
    ServedVersion version, const std::vector<InMemoryTable>& tables) {
  auto model = std::make_shared<ServedModel>();
  model->version_ = std::move(version);
  for (const InMemoryTable& table : tables) {
    if (table.dim <= 0 ||
        table.values.size() != table.keys.size() * static_cast<size_t>(table.dim)) {
      return absl::InvalidArgumentError(absl::StrCat("in-memory table '", table.name, "': dim ",
                                                     table.dim, ", ", table.keys.size(),
                                                     " keys and ", table.values.size(), " values"));
    }
    ServedTableBuilder builder(table.dim);
    for (size_t i = 0; i < table.keys.size(); ++i) {
      builder.Upsert(table.keys[i], table.values.data() + i * static_cast<size_t>(table.dim));
    }
    model->tables_[table.name] = builder.Finish();
  }
  std::unique_ptr<ModelBundle> bundle(new ModelBundle(ModelBundleOptions{}));
  bundle->current_ = std::move(model);
  return bundle;
}

std::shared_ptr<const ServedModel> ModelBundle::Current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

absl::StatusOr<int> ModelBundle::ApplyNewDeltas() {
  if (options_.model_dir.empty()) return 0;  // InMemory: no folder to read days from
  const std::string newest = Current()->version().day();
  int applied = 0;
  for (const std::string& day : ClosedDays(options_.model_dir)) {
    if (day <= newest) continue;
    absl::Status status = ApplyDay(day);
    if (!status.ok()) return status;
    ++applied;
  }
  return applied;
}

absl::Status ModelBundle::ApplyDay(const std::string& day) {
  absl::StatusOr<proto::CloseReport> report = ReadCloseReport(options_.model_dir, day);
  if (!report.ok()) return report.status();
  DayChanges changes;
  absl::flat_hash_map<int, uint64_t> until_version_of_server = until_version_of_server_;
  for (const proto::CloseReportFile& file : report->delta().files()) {
    absl::StatusOr<proto::DeltaHeader> header = ReadDelta(file.path(), &changes);
    if (!header.ok()) return header.status();
    // Deltas chain: a day's delta holds a server's changes since the version the day before's
    // ended at. Another start means a day between is missing or was closed again since.
    auto served = until_version_of_server.find(header->server_rank());
    if (served == until_version_of_server.end() || served->second != header->since_version()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "delta file ", file.path(), " holds the changes of server ", header->server_rank(),
          " after version ", header->since_version(), ", but the served model is at ",
          served == until_version_of_server.end() ? std::string("no version")
                                                  : absl::StrCat("version ", served->second),
          " of it: a day before is missing or was closed again (restart to load the newest base)"));
    }
    served->second = header->until_version();
  }
  std::shared_ptr<const ServedModel> previous = Current();
  auto model = std::make_shared<ServedModel>();
  // Read in place, the day's own base holds the same rows as the delta on the served model and
  // empties the overlay, whose memory would otherwise grow with every day since the base.
  bool switched = false;
  if (options_.tables == ServedTables::kRocksDb &&
      VerifyBase(options_.model_dir, day, *report).ok()) {
    model->version_.base_day = day;
    absl::Status loaded = LoadBase(day, report->delta().files_size(), model.get());
    switched = loaded.ok();
    if (!switched) {
      LOG(WARNING) << "base of " << day << " cannot be read (" << loaded
                   << "); applying its delta instead";
      model = std::make_shared<ServedModel>();
    }
  }
  if (!switched) {
    model->tables_ = previous->tables_;
    model->version_ = previous->version_;
    model->version_.delta_day = day;
    absl::Status applied = ApplyChanges(changes, /*rows_only=*/false,
                                        CloseReportPath(options_.model_dir, day), &model->tables_);
    if (!applied.ok()) return applied;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    current_ = std::move(model);
  }
  until_version_of_server_ = std::move(until_version_of_server);
  LOG(INFO) << "serving the " << (switched ? "base" : "delta") << " of " << day << " ("
            << report->delta().files_size() << " files) on base " << previous->version().base_day;
  return absl::OkStatus();
}

}  // namespace granary
