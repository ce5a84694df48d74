#include "ps/row_store.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/atomic_file.h"
#include "ps/unsynced_file_system.h"
#include "rocksdb/cache.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_buffer_manager.h"

namespace granary {
namespace {

constexpr char kTombstoneSuffix[] = "@tombstones";
// Where MergeFiles are written before they are ingested (a subfolder RocksDB ignores).
constexpr char kIncomingFolder[] = "incoming";
// A bloom filter makes the common "this key was never written" lookup nearly free.
constexpr double kBloomBitsPerKey = 10;
// Share of each memtable spent on a whole-key bloom filter: a cache miss's lookup of a key
// that is in a file, not in the memtable (nearly all of them), skips the skip-list search.
constexpr double kMemtableBloomRatio = 0.1;
// Bytes of an encoded key (EncodeKey).
constexpr size_t kEncodedKeyBytes = sizeof(uint64_t);

// Reads for iterators over a whole column family: with a prefix extractor (hash_index) an
// iterator would otherwise stay within one key's prefix.
rocksdb::ReadOptions TotalOrder() {
  rocksdb::ReadOptions options;
  options.total_order_seek = true;
  return options;
}

absl::Status ToStatus(const rocksdb::Status& status, const std::string& message) {
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsInvalidArgument()) return absl::FailedPreconditionError(message);
  return absl::UnavailableError(message);
}

// How long a failed write waits for RocksDB's background error recovery, and how often it
// checks; RocksDB retries every kRecoveryRetryMicros.
constexpr absl::Duration kRecoveryWait = absl::Milliseconds(500);
constexpr absl::Duration kRecoveryPoll = absl::Milliseconds(20);
constexpr uint64_t kRecoveryRetryMicros = 100 * 1000;

// Sorted runs at which writes slow down, and stop, until compaction catches up: a multiple of
// RowStoreOptions::sorted_runs_before_compaction plus a margin, so that a burst of spills does
// not stall pushes.
constexpr int kSlowdownRunsPerTrigger = 3;
constexpr int kMinSortedRunsBeforeCompaction = 2;
constexpr int kSlowdownExtraRuns = 20;
constexpr int kStopRunsPerTrigger = 4;
constexpr int kStopExtraRuns = 30;
// Memtables per column family before a flush; with the WriteBufferManager bounding the sum.
constexpr int kMemtablesPerTable = 4;

// The block-based format of a column family's files; `keyed` as for TableOptions.
rocksdb::BlockBasedTableOptions BlockBasedOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                                  const RowStoreOptions& store, bool keyed) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.block_size = store.block_bytes;
  if (store.hash_index_prefix_bytes > 0 && keyed) {
    table.index_type = rocksdb::BlockBasedTableOptions::kHashSearch;
  } else if (store.partitioned_index) {
    table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    table.metadata_cache_options.top_level_index_pinning = rocksdb::PinningTier::kAll;
    table.metadata_cache_options.partition_pinning = rocksdb::PinningTier::kAll;
  }
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
  // A point lookup finds its key in a data block by hash, not by binary search.
  table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
  return table;
}

// `keyed`: the column family's keys are all EncodeKey's 8 bytes (rows and tombstones; not the
// default column family's metadata names).
rocksdb::ColumnFamilyOptions TableOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                          const RowStoreOptions& store, bool keyed) {
  rocksdb::ColumnFamilyOptions options;
  options.write_buffer_size = store.memtable_bytes / kMemtablesPerTable;
  std::shared_ptr<rocksdb::TableFactory> block_based(
      rocksdb::NewBlockBasedTableFactory(BlockBasedOptions(cache, store, keyed)));
  options.table_factory = block_based;
  if (store.hash_index_prefix_bytes > 0 && keyed) {
    options.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(store.hash_index_prefix_bytes));
  } else if (store.plain_table && keyed) {
    rocksdb::PlainTableOptions plain;
    plain.user_key_len = kEncodedKeyBytes;
    plain.bloom_bits_per_key = static_cast<int>(kBloomBitsPerKey);
    // The whole key is the "prefix" PlainTable hashes: a lookup goes straight to its record.
    options.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(kEncodedKeyBytes));
    std::shared_ptr<rocksdb::TableFactory> plain_factory(rocksdb::NewPlainTableFactory(plain));
    // Writes PlainTable files, reads those and block-based ones (files written without the
    // option), telling them apart by their magic number.
    options.table_factory.reset(
        rocksdb::NewAdaptiveTableFactory(plain_factory, block_based, plain_factory));
  }
  options.compression = rocksdb::kNoCompression;  // float rows barely compress
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = kMemtableBloomRatio;
  // Pushes to uncached rows arrive as ingested files of merge operands, each one more sorted
  // run over the whole key range. Tiered (universal) compaction merges runs of similar size
  // and rewrites the big run of rows only when the small ones add up, where levelled
  // compaction rewrote L1 for every L0 file: table_bench measured 29 against 91 bytes written
  // per update, and 1.3x the pushes per CPU-second. A pull checks each run's bloom filter, so
  // a dozen runs before compacting cost little.
  options.compaction_style = rocksdb::kCompactionStyleUniversal;
  options.level0_file_num_compaction_trigger = store.sorted_runs_before_compaction;
  options.level0_slowdown_writes_trigger =
      kSlowdownRunsPerTrigger * store.sorted_runs_before_compaction + kSlowdownExtraRuns;
  options.level0_stop_writes_trigger =
      kStopRunsPerTrigger * store.sorted_runs_before_compaction + kStopExtraRuns;
  return options;
}

}  // namespace

void RowStore::Batch::PutRow(int table, uint64_t key, const char* record, size_t bytes) {
  batch_.Put(store_->row_handles_[table], EncodeKey(key), rocksdb::Slice(record, bytes));
}

void RowStore::Batch::DeleteRow(int table, uint64_t key) {
  batch_.Delete(store_->row_handles_[table], EncodeKey(key));
}

void RowStore::Batch::PutTombstone(int table, uint64_t key, uint64_t version) {
  batch_.Put(store_->tombstone_handles_[table], EncodeKey(key),
             rocksdb::Slice(reinterpret_cast<const char*>(&version), sizeof(version)));
}

void RowStore::Batch::PutMetadata(const std::string& name, const std::string& value) {
  batch_.Put(name, value);
}

std::string RowStore::EncodeKey(uint64_t key) {
  std::string bytes(8, '\0');
  for (int i = 7; i >= 0; --i, key >>= 8) bytes[i] = static_cast<char>(key & 0xff);
  return bytes;
}

uint64_t RowStore::DecodeKey(const rocksdb::Slice& bytes) {
  uint64_t key = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    key = (key << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return key;
}

absl::Status RowStore::Error(const rocksdb::Status& status, const std::string& what,
                             int table) const {
  std::string where = table >= 0 ? absl::StrCat("table '", table_names_[table], "' in ") : "";
  return ToStatus(status,
                  absl::StrCat(where, "RocksDB at ", path_, ": ", what, ": ", status.ToString()));
}

absl::StatusOr<std::unique_ptr<RowStore>> RowStore::Open(const RowStoreOptions& options,
                                                         const std::vector<std::string>& tables) {
  if (options.hash_index_prefix_bytes < 0 ||
      options.hash_index_prefix_bytes > static_cast<int>(kEncodedKeyBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("RocksDB at ", options.path, ": hash_index_prefix_bytes is ",
                     options.hash_index_prefix_bytes, ", must be 0 (off) to ", kEncodedKeyBytes,
                     " (the key's bytes)"));
  }
  if (options.plain_table && options.hash_index_prefix_bytes > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("RocksDB at ", options.path,
                     ": plain_table and hash_index_prefix_bytes are two formats of the same files; "
                     "set one"));
  }
  if (options.plain_table && !options.merge_operators.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RocksDB at ", options.path, ": plain_table takes no merge operators (table '",
        options.merge_operators.begin()->first,
        "'): RocksDB's PlainTable cannot seek in total order, as ingesting merge files needs"));
  }
  if (options.sorted_runs_before_compaction < kMinSortedRunsBeforeCompaction) {
    return absl::InvalidArgumentError(
        absl::StrCat("RocksDB at ", options.path, ": sorted_runs_before_compaction is ",
                     options.sorted_runs_before_compaction, ", must be at least ",
                     kMinSortedRunsBeforeCompaction, " (compaction merges at least two runs)"));
  }
  std::unique_ptr<RowStore> store(new RowStore());
  store->path_ = options.path;
  store->table_names_ = tables;
  std::error_code error;
  std::filesystem::create_directories(options.path, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("RocksDB at ", options.path, ": cannot create folder: ", error.message()));
  }
  // A merge file a crash left behind was never ingested: its pushes were lost with the
  // process, like unflushed cached rows (recovery restarts from a checkpoint).
  std::error_code ignored;
  std::filesystem::remove_all(options.path + "/" + kIncomingFolder, ignored);
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.allow_mmap_reads = options.mmap_reads;
  rocksdb::Env* base_env = options.env != nullptr ? options.env : rocksdb::Env::Default();
  store->env_ =
      rocksdb::NewCompositeEnv(std::make_shared<UnsyncedFileSystem>(base_env->GetFileSystem()));
  db_options.env = store->env_.get();
  db_options.bgerror_resume_retry_interval = kRecoveryRetryMicros;
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options.memtable_bytes);
  store->statistics_ = rocksdb::CreateDBStatistics();
  db_options.statistics = store->statistics_;

  // Open every column family on disk, plus the ones the config asks for.
  std::vector<std::string> existing;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing);
  std::map<std::string, bool> names = {{rocksdb::kDefaultColumnFamilyName, true}};
  if (listed.ok()) {
    for (const std::string& name : existing) names[name] = true;
  }
  for (const std::string& table : tables) {
    names[table] = true;
    names[table + kTombstoneSuffix] = true;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& [name, unused] : names) {
    descriptors.emplace_back(
        name, TableOptions(cache, options, name != rocksdb::kDefaultColumnFamilyName));
    auto merge_operator = options.merge_operators.find(name);
    if (merge_operator != options.merge_operators.end()) {
      descriptors.back().options.merge_operator = merge_operator->second;
    }
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status status =
      rocksdb::DB::Open(db_options, options.path, descriptors, &store->all_handles_, &db);
  if (!status.ok()) return store->Error(status, "open failed", -1);
  store->db_.reset(db);
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
  for (rocksdb::ColumnFamilyHandle* handle : store->all_handles_)
    by_name[handle->GetName()] = handle;
  for (size_t t = 0; t < tables.size(); ++t) {
    store->row_handles_.push_back(by_name[tables[t]]);
    store->tombstone_handles_.push_back(by_name[tables[t] + kTombstoneSuffix]);
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(TotalOrder(), store->row_handles_.back()));
    it->SeekToFirst();
    if (!it->status().ok())
      return store->Error(it->status(), "first read failed", static_cast<int>(t));
    store->empty_at_open_.push_back(!it->Valid());
    store->has_merge_operator_.push_back(options.merge_operators.count(tables[t]) > 0);
  }
  store->write_options_.disableWAL = true;
  store->verify_read_checksums_ = options.verify_read_checksums;
  return store;
}

RowStore::~RowStore() {
  if (db_ == nullptr) return;
  // Without a WAL, unflushed memtables would be lost on close; a clean close keeps them.
  db_->Flush(rocksdb::FlushOptions(), all_handles_).PermitUncheckedError();
  for (rocksdb::ColumnFamilyHandle* handle : all_handles_) {
    db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
}

rocksdb::Status RowStore::WithRecovery(const std::function<rocksdb::Status()>& write) {
  rocksdb::Status status = write();
  // RocksDB stops accepting writes after a failed flush and retries in the background; give
  // that recovery a bounded moment (a freed disk heals within one retry interval).
  absl::Time deadline = absl::Now() + kRecoveryWait;
  while (!status.ok() && absl::Now() < deadline) {
    rocksdb::Status resumed = db_->Resume();
    if (resumed.ok()) {
      status = write();
    } else if (resumed.IsBusy()) {
      absl::SleepFor(kRecoveryPoll);  // background recovery under way
    } else {
      break;
    }
  }
  return status;
}

absl::Status RowStore::Write(Batch& batch) {
  rocksdb::Status status = WithRecovery([&] { return db_->Write(write_options_, &batch.batch_); });
  if (!status.ok()) {
    return Error(status, absl::StrCat("write of ", batch.count(), " records failed"), -1);
  }
  return absl::OkStatus();
}

RowStore::MergeFile::MergeFile(const RowStore* store, int table, std::string path)
    : store_(store), table_(table), path_(std::move(path)) {}

RowStore::MergeFile::~MergeFile() {
  if (ingested_) return;
  writer_.reset();
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

absl::Status RowStore::MergeFile::Add(uint64_t key, absl::string_view operand) {
  rocksdb::Status status =
      writer_->Merge(EncodeKey(key), rocksdb::Slice(operand.data(), operand.size()));
  if (!status.ok()) {
    return store_->Error(status, absl::StrCat("adding key ", key, " to ", path_, " failed"),
                         table_);
  }
  ++count_;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RowStore::MergeFile>> RowStore::NewMergeFile(int table) {
  const std::string folder = path_ + "/" + kIncomingFolder;
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("table '", table_names_[table], "' in RocksDB at ",
                                               path_, ": cannot create ", folder, ": ",
                                               error.message()));
  }
  std::unique_ptr<MergeFile> file(
      new MergeFile(this, table,
                    absl::StrCat(folder, "/", table_names_[table], "-",
                                 merge_files_created_.fetch_add(1), ".sst")));
  file->writer_ = std::make_unique<rocksdb::SstFileWriter>(
      rocksdb::EnvOptions(), db_->GetOptions(row_handles_[table]), row_handles_[table],
      // Kept in the page cache: compactions read the file again soon.
      /*invalidate_page_cache=*/false);
  rocksdb::Status status = file->writer_->Open(file->path_);
  if (!status.ok()) {
    return Error(status, absl::StrCat("creating ", file->path_, " failed"), table);
  }
  return file;
}

absl::Status RowStore::IngestMergeFile(MergeFile& file) {
  if (file.count_ == 0) return absl::OkStatus();
  rocksdb::Status status = file.writer_->Finish();
  if (!status.ok()) {
    return Error(status, absl::StrCat("finishing ", file.path_, " failed"), file.table_);
  }
  rocksdb::IngestExternalFileOptions options;
  options.move_files = true;  // a hard link: no copy
  // The file's sequence number lives in the MANIFEST only; writing it into the file too (for
  // RocksDB versions before 5.16) was a random write and an fsync per ingest.
  options.write_global_seqno = false;
  status = WithRecovery(
      [&] { return db_->IngestExternalFile(row_handles_[file.table_], {file.path_}, options); });
  if (!status.ok()) {
    return Error(
        status,
        absl::StrCat("ingesting ", file.count_, " merge operands from ", file.path_, " failed"),
        file.table_);
  }
  file.ingested_ = true;
  // move_files links the file into the database; the name in "incoming" is left to remove.
  std::error_code ignored;
  std::filesystem::remove(file.path_, ignored);
  return absl::OkStatus();
}

RowStore::Snapshot RowStore::NewSnapshot() {
  rocksdb::DB* db = db_.get();
  return Snapshot(db->GetSnapshot(),
                  [db](const rocksdb::Snapshot* snapshot) { db->ReleaseSnapshot(snapshot); });
}

absl::Status RowStore::MultiGet(int table, absl::Span<const uint64_t> keys,
                                std::vector<rocksdb::PinnableSlice>* records,
                                std::vector<bool>* found, const rocksdb::Snapshot* snapshot) {
  std::vector<std::string> encoded(keys.size());
  std::vector<rocksdb::Slice> slices(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    encoded[i] = EncodeKey(keys[i]);
    slices[i] = encoded[i];
  }
  records->clear();
  records->resize(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot;
  // The RowCache holds the hot rows; a block read for one cold row would only evict others.
  read_options.fill_cache = false;
  read_options.verify_checksums = verify_read_checksums_;
  db_->MultiGet(read_options, row_handles_[table], keys.size(), slices.data(), records->data(),
                statuses.data());
  found->assign(keys.size(), false);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok()) {
      (*found)[i] = true;
    } else if (!statuses[i].IsNotFound()) {
      return Error(statuses[i], absl::StrCat("read of key ", keys[i], " failed"), table);
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<rocksdb::Iterator> RowStore::NewRowIterator(int table) const {
  return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(TotalOrder(), row_handles_[table]));
}

std::unique_ptr<rocksdb::Iterator> RowStore::NewTombstoneIterator(int table) const {
  return std::unique_ptr<rocksdb::Iterator>(
      db_->NewIterator(TotalOrder(), tombstone_handles_[table]));
}

absl::Status RowStore::PutMetadata(const std::string& name, const std::string& value) {
  rocksdb::Status status = db_->Put(write_options_, name, value);
  if (!status.ok()) return Error(status, absl::StrCat("write of '", name, "' failed"), -1);
  return absl::OkStatus();
}

absl::StatusOr<std::string> RowStore::GetMetadata(const std::string& name) const {
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), name, &value);
  if (!status.ok()) return Error(status, absl::StrCat("read of '", name, "' failed"), -1);
  return value;
}

absl::Status RowStore::Checkpoint(const std::string& dir) {
  std::error_code error;
  if (std::filesystem::exists(dir, error)) {
    // Never mix a new checkpoint into an old one's folder.
    return absl::FailedPreconditionError(
        absl::StrCat("RocksDB at ", path_, ": checkpoint folder ", dir, " already exists"));
  }
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status status = rocksdb::Checkpoint::Create(db_.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush = 0: always flush memtables, which hold everything since the WAL is off.
  if (status.ok()) status = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  if (!status.ok() && db_->Resume().ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    status = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  }
  if (!status.ok()) {
    // A half-written checkpoint must not be mistaken for one: remove it.
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return Error(status, absl::StrCat("checkpoint to ", dir, " failed"), -1);
  }
  // RocksDB's own syncs are skipped (UnsyncedFileSystem): the checkpoint is made durable here.
  absl::Status synced = SyncFolderFiles(dir);
  if (!synced.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return absl::Status(synced.code(), absl::StrCat("RocksDB at ", path_, ": checkpoint to ", dir,
                                                    ": ", synced.message()));
  }
  return absl::OkStatus();
}

uint64_t RowStore::BytesWritten() const {
  return statistics_->getTickerCount(rocksdb::FLUSH_WRITE_BYTES) +
         statistics_->getTickerCount(rocksdb::COMPACT_WRITE_BYTES);
}

uint64_t RowStore::TableReaderBytes() const {
  uint64_t total = 0;
  for (rocksdb::ColumnFamilyHandle* handle : all_handles_) {
    uint64_t bytes = 0;
    if (db_->GetIntProperty(handle, rocksdb::DB::Properties::kEstimateTableReadersMem, &bytes)) {
      total += bytes;
    }
  }
  return total;
}

uint64_t RowStore::WriteStallMicros() const {
  return statistics_->getTickerCount(rocksdb::STALL_MICROS);
}

}  // namespace granary
