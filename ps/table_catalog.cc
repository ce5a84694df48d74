#include "ps/table_catalog.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/delta_file.h"
#include "glog/logging.h"

namespace granary {
namespace {

constexpr char kVersionKey[] = "granary.data_version";
// The until_version of the last ExportNextDelta.
constexpr char kExportedVersionKey[] = "granary.exported_version";
// The DayCloseRecord of the last day closed (or being closed), binary.
constexpr char kDayCloseKey[] = "granary.day_close";

absl::Status ReplaceWithCheckpoint(const std::string& checkpoint, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(checkpoint, error)) {
    return absl::NotFoundError(absl::StrCat("checkpoint folder ", checkpoint, " does not exist"));
  }
  fs::remove_all(path, error);
  if (!error) fs::create_directories(fs::path(path).parent_path(), error);
  if (!error) fs::copy(checkpoint, path, fs::copy_options::recursive, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("restoring ", path, " from ", checkpoint, ": ", error.message()));
  }
  return absl::OkStatus();
}

// The budget of each table: explicit ones as configured, the rest split evenly.
std::vector<size_t> CacheBudgets(const proto::ClusterConfig& config, size_t total) {
  size_t explicit_bytes = 0;
  int implicit_tables = 0;
  for (const proto::TableConfig& table : config.tables()) {
    if (table.has_cache_bytes()) {
      explicit_bytes += table.cache_bytes();
    } else {
      ++implicit_tables;
    }
  }
  size_t share = implicit_tables == 0 || explicit_bytes >= total
                     ? 0
                     : (total - explicit_bytes) / implicit_tables;
  std::vector<size_t> budgets;
  for (const proto::TableConfig& table : config.tables()) {
    budgets.push_back(table.has_cache_bytes() ? table.cache_bytes() : share);
  }
  return budgets;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TableCatalog>> TableCatalog::Open(
    const proto::ClusterConfig& config, const TableCatalogOptions& options) {
  if (!options.restore_from.empty()) {
    absl::Status restored = ReplaceWithCheckpoint(options.restore_from, options.path);
    if (!restored.ok()) return restored;
    LOG(INFO) << "restored " << options.path << " from checkpoint " << options.restore_from;
  }
  std::unique_ptr<TableCatalog> catalog(new TableCatalog());
  std::vector<std::string> names;
  for (const proto::TableConfig& table : config.tables()) names.push_back(table.name());
  RowStoreOptions store_options;
  store_options.path = options.path;
  store_options.env = options.env;
  store_options.memtable_bytes = options.memtable_bytes;
  for (const proto::TableConfig& table : config.tables()) {
    absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> merge_operator =
        EmbeddingTable::NewMergeOperator(table);
    if (!merge_operator.ok()) return merge_operator.status();
    store_options.merge_operators[table.name()] = *std::move(merge_operator);
  }
  absl::StatusOr<std::unique_ptr<RowStore>> store = RowStore::Open(store_options, names);
  if (!store.ok()) return store.status();
  catalog->store_ = *std::move(store);

  absl::StatusOr<std::string> version = catalog->store_->GetMetadata(kVersionKey);
  uint64_t parsed = 0;
  if (version.ok() && absl::SimpleAtoi(*version, &parsed) && parsed > 0) {
    catalog->stamp_.version = parsed;
  } else if (!version.ok() && !absl::IsNotFound(version.status())) {
    return version.status();
  }

  std::vector<size_t> budgets = CacheBudgets(config, options.cache_bytes);
  for (int t = 0; t < config.tables_size(); ++t) {
    absl::StatusOr<std::unique_ptr<EmbeddingTable>> table =
        EmbeddingTable::Create(config.tables(t), catalog->store_.get(), t, budgets[t],
                               &catalog->stamp_, options.shards_per_table);
    if (!table.ok()) return table.status();
    catalog->by_name_[config.tables(t).name()] = table->get();
    catalog->tables_.push_back(*std::move(table));
  }
  return catalog;
}

EmbeddingTable* TableCatalog::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

absl::Status TableCatalog::AdvanceVersion() {
  uint64_t next = stamp_.version.load() + 1;
  absl::Status status = store_->PutMetadata(kVersionKey, absl::StrCat(next));
  if (status.ok()) stamp_.version = next;
  return status;
}

absl::Status TableCatalog::Checkpoint(const std::string& dir) {
  std::unique_lock<std::shared_mutex> cut(cut_mutex_);
  for (auto& table : tables_) {
    absl::Status status = table->FlushDirtyRows();
    if (!status.ok()) return status;
  }
  absl::Status status = store_->PutMetadata(kVersionKey, absl::StrCat(stamp_.version.load()));
  if (!status.ok()) return status;
  return store_->Checkpoint(dir);
}

absl::StatusOr<uint64_t> TableCatalog::ExportedVersion() const {
  uint64_t since = 0;
  absl::StatusOr<std::string> exported = store_->GetMetadata(kExportedVersionKey);
  if (exported.ok()) {
    if (!absl::SimpleAtoi(*exported, &since)) {
      return absl::DataLossError(absl::StrCat("RocksDB at ", store_->path(), ": metadata ",
                                              kExportedVersionKey, " is '", *exported, "'"));
    }
  } else if (!absl::IsNotFound(exported.status())) {
    return exported.status();
  }
  return since;
}

absl::StatusOr<proto::DayCloseRecord> TableCatalog::DayCloseOfToday() const {
  proto::DayCloseRecord record;
  absl::StatusOr<std::string> stored = store_->GetMetadata(kDayCloseKey);
  if (stored.ok()) {
    if (!record.ParseFromString(*stored)) {
      return absl::DataLossError(absl::StrCat("RocksDB at ", store_->path(), ": metadata ",
                                              kDayCloseKey, " cannot be parsed"));
    }
    if (record.day() == stamp_.day.load()) return record;
  } else if (!absl::IsNotFound(stored.status())) {
    return stored.status();
  }
  absl::StatusOr<uint64_t> since = ExportedVersion();
  if (!since.ok()) return since.status();
  record.Clear();
  record.set_day(stamp_.day.load());
  record.set_since_version(*since);
  return record;
}

absl::StatusOr<std::vector<ShrinkReport>> TableCatalog::Shrink() {
  std::unique_lock<std::shared_mutex> cut(cut_mutex_);
  absl::StatusOr<proto::DayCloseRecord> record = DayCloseOfToday();
  if (!record.ok()) return record.status();
  std::vector<ShrinkReport> reports;
  if (record->shrunk()) {
    for (const proto::TableShrink& shrink : record->shrink()) {
      reports.push_back(ShrinkReport{shrink.table(), shrink.kept(), shrink.dropped(),
                                     /*already_shrunk=*/true});
    }
    LOG(INFO) << "shrink day " << stamp_.day.load()
              << ": already shrunk (a re-run of its close); nothing decayed or evicted again";
    return reports;
  }
  for (auto& table : tables_) {
    absl::StatusOr<ShrinkReport> report = table->Shrink();
    if (!report.ok()) return report.status();
    LOG(INFO) << "shrink day " << stamp_.day.load() << ": table '" << report->table << "' kept "
              << report->kept << " rows, dropped " << report->dropped;
    reports.push_back(*report);
    proto::TableShrink* shrink = record->add_shrink();
    shrink->set_table(report->table);
    shrink->set_kept(report->kept);
    shrink->set_dropped(report->dropped);
  }
  record->set_shrunk(true);
  // Rows pushed from now on must not share a version with this day's tombstones. The new
  // version and the record go in one write: a store holds both or neither.
  const uint64_t next = stamp_.version.load() + 1;
  RowStore::Batch batch = store_->NewBatch();
  batch.PutMetadata(kVersionKey, absl::StrCat(next));
  batch.PutMetadata(kDayCloseKey, record->SerializeAsString());
  absl::Status status = store_->Write(batch);
  if (!status.ok()) return status;
  stamp_.version = next;
  return reports;
}

absl::StatusOr<DeltaSummary> TableCatalog::ExportDelta(uint64_t since_version,
                                                       const std::string& path, int server_rank) {
  std::unique_lock<std::shared_mutex> cut(cut_mutex_);
  DeltaSummary summary;
  summary.since_version = since_version;
  summary.until_version = stamp_.version.load();
  proto::DeltaHeader header;
  header.set_server_rank(server_rank);
  header.set_since_version(summary.since_version);
  header.set_until_version(summary.until_version);
  absl::StatusOr<std::unique_ptr<DeltaWriter>> writer = DeltaWriter::Create(path, header);
  if (!writer.ok()) return writer.status();
  for (int t = 0; t < static_cast<int>(tables_.size()); ++t) {
    EmbeddingTable& table = *tables_[t];
    const RowLayout& layout = table.layout();
    absl::Status status = table.ForEachStoredRow([&](uint64_t key, const char* record) {
      if (layout.meta(record)->version <= since_version) return absl::OkStatus();
      return (*writer)->AddRow(table.name(), layout.dim(), key, layout.values(record));
    });
    if (!status.ok()) return status;
    std::vector<uint64_t> evicted;
    std::unique_ptr<rocksdb::Iterator> it = store_->NewTombstoneIterator(t);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t version = 0;
      if (it->value().size() == sizeof(version)) {
        std::memcpy(&version, it->value().data(), sizeof(version));
      }
      if (version > since_version) evicted.push_back(RowStore::DecodeKey(it->key()));
    }
    if (!it->status().ok()) {
      return absl::UnavailableError(
          absl::StrCat("table '", table.name(), "' in RocksDB at ", store_->path(),
                       ": tombstone scan failed: ", it->status().ToString()));
    }
    // A key evicted and re-admitted since is a row again: its row above supersedes the
    // tombstone.
    std::vector<rocksdb::PinnableSlice> records;
    std::vector<bool> found;
    status = store_->MultiGet(t, evicted, &records, &found, /*snapshot=*/nullptr);
    for (size_t i = 0; status.ok() && i < evicted.size(); ++i) {
      if (!found[i]) status = (*writer)->AddTombstone(table.name(), layout.dim(), evicted[i]);
    }
    if (!status.ok()) return status;
  }
  absl::Status status = (*writer)->Finish();
  if (!status.ok()) return status;
  summary.rows = (*writer)->rows();
  summary.tombstones = (*writer)->tombstones();
  status = AdvanceVersion();
  if (!status.ok()) return status;
  LOG(INFO) << "exported delta (" << summary.since_version << ", " << summary.until_version
            << "] to " << path << ": " << summary.rows << " rows, " << summary.tombstones
            << " tombstones";
  return summary;
}

absl::StatusOr<DeltaSummary> TableCatalog::ExportNextDelta(const std::string& path,
                                                           int server_rank) {
  absl::StatusOr<proto::DayCloseRecord> record = DayCloseOfToday();
  if (!record.ok()) return record.status();
  // The record fixes the day's since-version before the marker moves.
  absl::Status recorded = store_->PutMetadata(kDayCloseKey, record->SerializeAsString());
  if (!recorded.ok()) return recorded;
  absl::StatusOr<DeltaSummary> summary = ExportDelta(record->since_version(), path, server_rank);
  if (!summary.ok()) return summary;
  recorded = store_->PutMetadata(kExportedVersionKey, absl::StrCat(summary->until_version));
  if (!recorded.ok()) return recorded;
  return summary;
}

}  // namespace granary
