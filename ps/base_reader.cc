#include "ps/base_reader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "ps/embedding_table.h"
#include "ps/optimizer.h"
#include "ps/row_layout.h"
#include "ps/row_store.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"

namespace granary {

namespace {

// Bits per key of the bloom filters the server writes (ps/row_store.cc); the reader reads them
// whatever the bits, but needs a filter policy of the same kind to use them.
constexpr double kBloomBitsPerKey = 10;

class RocksDbBaseReader : public BaseShardRows {
 public:
  struct Table {
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    RowLayout layout{0, 0};
  };

  // OpenBaseReader's work.
  static absl::StatusOr<std::unique_ptr<BaseShardRows>> Open(const proto::ClusterConfig& config,
                                                             const std::string& shard_dir,
                                                             size_t block_cache_bytes);

  ~RocksDbBaseReader() override {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
  }

  std::vector<std::string> tables() const override {
    std::vector<std::string> names;
    for (const auto& [name, table] : tables_) names.push_back(name);
    return names;
  }
  int dim(const std::string& table) const override {
    auto it = tables_.find(table);
    return it == tables_.end() ? -1 : it->second.layout.dim();
  }

  absl::Status Read(const std::string& table_name, absl::Span<const uint64_t> keys, float* rows,
                    bool* found) const override {
    auto it = tables_.find(table_name);
    if (it == tables_.end()) {
      return absl::NotFoundError(absl::StrCat("base ", dir_, " has no table '", table_name, "'"));
    }
    const Table& table = it->second;
    // Per-thread buffers reused across requests: no allocation per row.
    thread_local std::vector<std::string> encoded;
    thread_local std::vector<rocksdb::Slice> slices;
    thread_local std::vector<rocksdb::PinnableSlice> values;
    thread_local std::vector<rocksdb::Status> statuses;
    encoded.resize(keys.size());
    slices.resize(keys.size());
    if (values.size() < keys.size()) values.resize(keys.size());
    statuses.resize(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      encoded[i] = RowStore::EncodeKey(keys[i]);
      slices[i] = encoded[i];
      values[i].Reset();
    }
    db_->MultiGet(rocksdb::ReadOptions(), table.handle, keys.size(), slices.data(), values.data(),
                  statuses.data());
    const size_t dim = static_cast<size_t>(table.layout.dim());
    absl::Status status;
    for (size_t i = 0; i < keys.size(); ++i) {
      found[i] = false;
      if (!status.ok() || statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok()) {
        status =
            absl::UnavailableError(absl::StrCat("base ", dir_, " table '", table_name, "' key ",
                                                keys[i], ": ", statuses[i].ToString()));
      } else if (values[i].size() < table.layout.row_bytes()) {
        status = absl::DataLossError(
            absl::StrCat("base ", dir_, " table '", table_name, "' key ", keys[i], ": a row of ",
                         values[i].size(), " bytes, the layout has ", table.layout.row_bytes()));
      } else {
        // The record's bytes need not be aligned for float: copied as bytes.
        std::memcpy(rows + i * dim, table.layout.values(values[i].data()), dim * sizeof(float));
        found[i] = true;
      }
    }
    // Unpinned now: a pinned block must not outlive the database (these buffers outlive it).
    for (size_t i = 0; i < keys.size(); ++i) values[i].Reset();
    return status;
  }

 private:
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  absl::flat_hash_map<std::string, Table> tables_;
};

absl::StatusOr<std::unique_ptr<BaseShardRows>> RocksDbBaseReader::Open(
    const proto::ClusterConfig& config, const std::string& shard_dir, size_t block_cache_bytes) {
  if (!std::filesystem::is_directory(shard_dir)) {
    return absl::NotFoundError(absl::StrCat("base shard ", shard_dir, " is missing"));
  }
  rocksdb::DBOptions db_options;
  // Blocks are parsed where the page cache maps them, with no pread and no copy.
  db_options.allow_mmap_reads = true;
  std::vector<std::string> names;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db_options, shard_dir, &names);
  if (!listed.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("base shard ", shard_dir, " cannot be read: ", listed.ToString()));
  }
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(block_cache_bytes);
  rocksdb::BlockBasedTableOptions block_options;
  block_options.block_cache = cache;
  // The base's files are read as the server reads its own (ps/row_store.cc): index partitions
  // pinned in the cache, and bloom filters read (a reader without a filter policy skips them).
  block_options.metadata_cache_options.top_level_index_pinning = rocksdb::PinningTier::kAll;
  block_options.metadata_cache_options.partition_pinning = rocksdb::PinningTier::kAll;
  block_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
  std::shared_ptr<rocksdb::TableFactory> factory(rocksdb::NewBlockBasedTableFactory(block_options));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    rocksdb::ColumnFamilyOptions options;
    options.table_factory = factory;
    for (const proto::TableConfig& table : config.tables()) {
      if (table.name() != name) continue;
      absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> merge_operator =
          EmbeddingTable::NewMergeOperator(table);
      if (!merge_operator.ok()) return merge_operator.status();
      options.merge_operator = *std::move(merge_operator);
    }
    descriptors.emplace_back(name, options);
  }
  auto reader = std::make_unique<RocksDbBaseReader>();
  reader->dir_ = shard_dir;
  rocksdb::DB* db = nullptr;
  rocksdb::Status opened =
      rocksdb::DB::OpenForReadOnly(db_options, shard_dir, descriptors, &reader->handles_, &db);
  if (!opened.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("base shard ", shard_dir, " cannot be opened: ", opened.ToString()));
  }
  reader->db_.reset(db);
  for (const proto::TableConfig& table : config.tables()) {
    auto handle =
        std::find_if(reader->handles_.begin(), reader->handles_.end(),
                     [&](rocksdb::ColumnFamilyHandle* h) { return h->GetName() == table.name(); });
    if (handle == reader->handles_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("base shard ", shard_dir, " has no table '", table.name(), "'"));
    }
    absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeTableOptimizer(table);
    if (!optimizer.ok()) return optimizer.status();
    RocksDbBaseReader::Table& served = reader->tables_[table.name()];
    served.handle = *handle;
    served.layout = RowLayout(static_cast<int>(table.dim()), (*optimizer)->num_slots());
  }
  return reader;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BaseShardRows>> OpenBaseReader(const proto::ClusterConfig& config,
                                                              const std::string& shard_dir,
                                                              size_t block_cache_bytes) {
  return RocksDbBaseReader::Open(config, shard_dir, block_cache_bytes);
}

}  // namespace granary
