// RowStore: a server's durable rows, in one RocksDB instance with one column family per
// table (and one per table for eviction tombstones).
//
// Keys are the 8-byte big-endian feature key, so a column family iterates in key order.
// Values are row records (ps/row_layout.h). Writes skip RocksDB's write-ahead log: durability
// comes from consistent checkpoints (DESIGN.md "Durability and recovery"), and between
// checkpoints the WAL would only cost bandwidth.
//
// Every error names the table (where there is one), the database path and RocksDB's reason.
//
// Thread-safe: RocksDB serializes what needs it; Batch objects are thread-compatible.
#ifndef GRANARY_PS_ROW_STORE_H_
#define GRANARY_PS_ROW_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "rocksdb/db.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/statistics.h"
#include "rocksdb/write_batch.h"

namespace granary {

struct RowStoreOptions {
  // Folder of the database; created if missing (with its parents).
  std::string path;
  // RocksDB's block cache; the RowCache in front is the main cache, so this stays small.
  size_t block_cache_bytes = 32 << 20;
  // Bound on all memtables together (RocksDB's WriteBufferManager).
  size_t memtable_bytes = 64 << 20;
  // The read path of a row-cache miss (docs/storage.md has what each costs per miss):
  // Files are read through mmap: a miss parses its (uncompressed) block where the page cache
  // holds it, with no pread and no copy. Without it, a 4 KB block is copied per miss.
  bool mmap_reads = true;
  // Each file's index is cut into partitions of about a block, under a small top level held by
  // the table reader, with the partitions pinned in the block cache: a miss binary-searches
  // the top level (which stays in the CPU caches) and one partition, instead of one index
  // over the whole file whose deep probes each miss the CPU caches.
  bool partitioned_index = true;
  // If non-zero, each file of a table's rows has a hash index (RocksDB's kHashSearch) over
  // the first hash_index_prefix_bytes bytes of the keys instead of the partitioned index: a
  // miss finds the blocks of its prefix by hash and binary-searches only those. The index
  // holds every distinct prefix of a file in memory: with 8 bytes (the whole key) ~56 bytes
  // per row, more than a 10 % row cache; with 2 bytes at most 65,536 prefixes per file.
  // Takes the place of partitioned_index. 0 (off), or 1 to 8.
  int hash_index_prefix_bytes = 0;
  // If true, each table's rows (and tombstones) are written as RocksDB PlainTable files instead
  // of block-based ones: records one after another, read where mmap maps them, found through
  // an in-memory hash index over the whole key (a 4-byte bucket at a 0.75 load, a sub-index
  // entry where buckets collide, and a 10-bit bloom filter: about 9 bytes per row), with no
  // blocks, block index or block checksums. Files written before (block-based) are read too;
  // a store whose files were written with it must be opened with it. RocksDB 7.8's PlainTable
  // cannot seek in total order, which ingesting a file needs, so it takes no merge_operators
  // (its tables read the rows they push). Excludes hash_index_prefix_bytes. Measured, and why
  // it is off, in docs/storage.md.
  bool plain_table = false;
  // Size of an (uncompressed) data block: a miss verifies the checksum of, and searches, a
  // whole block, while the index (partitioned, so it stays cheap to search) holds an entry per
  // block. 1 KB (RocksDB's default is 4 KB) holds ~6 rows of dim 16 with Adagrad.
  size_t block_bytes = 1024;
  // Sorted runs (ingested files of merge operands and flushed memtables) a table gathers
  // before universal compaction merges them. A row-cache miss checks the bloom filter of every
  // run and reads a block of each run that holds the key, so fewer runs make misses cheaper,
  // while compacting more often rewrites more bytes per pushed row (docs/storage.md).
  int sorted_runs_before_compaction = 12;
  // Whether a miss verifies the checksum of the block it reads. RocksDB verifies every block
  // a flush or compaction reads either way.
  bool verify_read_checksums = true;
  // If non-null, RocksDB does all file I/O through it (tests inject disk-full faults). Not
  // owned; must outlive the store. Either way its syncs are skipped but a checkpoint's
  // (ps/unsynced_file_system.h).
  rocksdb::Env* env = nullptr;
  // The merge operator of each table's rows, by table name; a table without one takes no
  // MergeFile. A database holding merge operands must be reopened with the same operators
  // (otherwise Open fails with an error naming the table and path).
  std::map<std::string, std::shared_ptr<rocksdb::MergeOperator>> merge_operators;
};

class RowStore {
 public:
  // A set of writes applied atomically by Write().
  class Batch {
   public:
    void PutRow(int table, uint64_t key, const char* record, size_t bytes);
    void DeleteRow(int table, uint64_t key);
    // Records that `key` was evicted at data version `version` (for delta exports).
    void PutTombstone(int table, uint64_t key, uint64_t version);
    // A small named value (see PutMetadata), written with the rest of the batch.
    void PutMetadata(const std::string& name, const std::string& value);
    size_t count() const { return static_cast<size_t>(batch_.Count()); }
    bool empty() const { return batch_.Count() == 0; }

   private:
    friend class RowStore;
    explicit Batch(const RowStore* store) : store_(store) {}
    const RowStore* store_;
    rocksdb::WriteBatch batch_;
  };

  // Merge operands of one table written as one sorted file, then ingested into RocksDB at
  // once (IngestMergeFile). Cheaper than a Batch for many operands: the file is written
  // sequentially, with no memtable insertion. Thread-compatible.
  class MergeFile {
   public:
    ~MergeFile();  // removes the file unless it was ingested
    MergeFile(const MergeFile&) = delete;
    MergeFile& operator=(const MergeFile&) = delete;

    // Adds the operand for `key`; keys must be added in strictly increasing order (so all of
    // a key's operands go into one operand, which the merge operator must accept). Errors
    // (e.g. disk full) name the table and the file.
    absl::Status Add(uint64_t key, absl::string_view operand);
    size_t count() const { return count_; }
    const std::string& path() const { return path_; }

   private:
    friend class RowStore;
    MergeFile(const RowStore* store, int table, std::string path);
    const RowStore* store_;
    const int table_;
    const std::string path_;
    std::unique_ptr<rocksdb::SstFileWriter> writer_;
    size_t count_ = 0;
    bool ingested_ = false;
  };

  // Opens or creates the database with a column family per name in `tables` (column families
  // of other tables found on disk are kept, untouched). FailedPrecondition / DataLoss /
  // Unavailable naming the path if it cannot be opened (not a folder, corrupt, no space).
  static absl::StatusOr<std::unique_ptr<RowStore>> Open(const RowStoreOptions& options,
                                                        const std::vector<std::string>& tables);
  ~RowStore();
  RowStore(const RowStore&) = delete;
  RowStore& operator=(const RowStore&) = delete;

  const std::string& path() const { return path_; }
  const std::string& table_name(int table) const { return table_names_[table]; }

  // True if the table had no rows when the store was opened; lets a table skip RocksDB reads
  // for keys it has never written.
  bool TableWasEmptyAtOpen(int table) const { return empty_at_open_[table]; }
  // True if the table's rows were opened with a merge operator (RowStoreOptions).
  bool has_merge_operator(int table) const { return has_merge_operator_[table]; }

  Batch NewBatch() const { return Batch(this); }
  // Applies `batch`. After a failed background flush (e.g. disk full) RocksDB refuses writes
  // until resumed; Write tries to resume once, so a freed disk heals without a restart.
  absl::Status Write(Batch& batch);

  // A new, empty MergeFile for `table`, in the store's "incoming" folder.
  // REQUIRES: has_merge_operator(table).
  absl::StatusOr<std::unique_ptr<MergeFile>> NewMergeFile(int table);
  // Finishes `file` and ingests it: its operands become visible atomically, newer than every
  // earlier write. An empty file is a no-op. Errors name the table, the file and the path.
  absl::Status IngestMergeFile(MergeFile& file);

  // A consistent view of every table as of its creation (a RocksDB snapshot, released with
  // the last copy). It must not outlive the store.
  using Snapshot = std::shared_ptr<const rocksdb::Snapshot>;
  Snapshot NewSnapshot();

  // Looks up `keys` of `table`, as of `snapshot` if not null, else the latest writes. On
  // success found[i] says whether keys[i] exists and, if so, records[i] holds its record.
  absl::Status MultiGet(int table, absl::Span<const uint64_t> keys,
                        std::vector<rocksdb::PinnableSlice>* records, std::vector<bool>* found,
                        const rocksdb::Snapshot* snapshot);

  // Iterator over the rows (or tombstones) of `table`, in key order. Check status() after.
  std::unique_ptr<rocksdb::Iterator> NewRowIterator(int table) const;
  std::unique_ptr<rocksdb::Iterator> NewTombstoneIterator(int table) const;

  // Small named values of the server (e.g. its data version), in the default column family.
  absl::Status PutMetadata(const std::string& name, const std::string& value);
  // NotFound if absent.
  absl::StatusOr<std::string> GetMetadata(const std::string& name) const;

  // Writes a consistent, openable copy of the database to `dir` (which must not exist),
  // flushing memtables first since writes skip the WAL.
  absl::Status Checkpoint(const std::string& dir);

  // Bytes RocksDB has written to disk so far: flushes and compactions (the WAL is off).
  uint64_t BytesWritten() const;
  // Bytes RocksDB's open files hold in memory outside the block cache: their indexes and
  // filters where these are not block-cache blocks (PlainTable's hash index and bloom filter,
  // a partitioned index's top level). RocksDB's estimate, summed over the column families.
  uint64_t TableReaderBytes() const;
  // Microseconds writers have waited so far because flushes or compactions fell behind.
  uint64_t WriteStallMicros() const;

  // Key encoding: big-endian, so that byte order equals numeric order.
  static std::string EncodeKey(uint64_t key);
  static uint64_t DecodeKey(const rocksdb::Slice& bytes);

 private:
  RowStore() = default;
  absl::Status Error(const rocksdb::Status& status, const std::string& what, int table) const;
  // Runs `write`; if it fails, resumes RocksDB after a background error (see Write) and runs
  // it again, for a bounded time.
  rocksdb::Status WithRecovery(const std::function<rocksdb::Status()>& write);

  std::string path_;
  std::vector<std::string> table_names_;
  std::vector<bool> empty_at_open_;
  std::vector<bool> has_merge_operator_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  // RocksDB's file I/O: an UnsyncedFileSystem over RowStoreOptions::env's. Outlives db_.
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> all_handles_;  // owned; destroyed before db_
  std::vector<rocksdb::ColumnFamilyHandle*> row_handles_;  // by table index
  std::vector<rocksdb::ColumnFamilyHandle*> tombstone_handles_;
  rocksdb::WriteOptions write_options_;
  bool verify_read_checksums_ = true;
  std::atomic<uint64_t> merge_files_created_{0};  // names incoming files
};

}  // namespace granary

#endif  // GRANARY_PS_ROW_STORE_H_
