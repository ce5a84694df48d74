// table_bench: rows/s of one server's EmbeddingTable — pull, push with Adagrad, and a
// training step (pull then push of the same keys) — over a large key space with Zipf-skewed
// access, with the whole table in memory and with a RowCache of 10 % and 1 % of it in front
// of RocksDB, printed side by side.
//
// Everything runs in this process: the benchmark calls EmbeddingTable directly (no network,
// no TableCatalog), with a RowStore in a fresh folder under --dir that is removed at the end.
//
// Workload. --keys key ranks; rank r (1 = hottest) is drawn with probability proportional to
// r^-zipf (rejection-inversion sampling, no table) and stands for the feature key FeatureKey
// of its 8 bytes, so hot keys spread over every cache shard. A batch is --batch draws,
// deduplicated and sorted as KVWorker sends them; rows/s counts its unique keys. Every batch
// is generated before any timing, and the same batches serve every dim and set-up.
// --hot_key adds key rank 1 to every batch (a bias row, a popular item), which every request
// then updates; with --threads=2 two requests at a time push it. (At Zipf 1.1 and 4,096 draws
// rank 1, drawn with p = 0.095, is in every batch already; the flag matters for flatter --zipf.)
//
// Set-ups (--cache_fractions), each a fresh EmbeddingTable and RowStore with default options:
//   memory     cache_bytes = keys x (row stride + RowCache::kMaxOverheadBytesPerRow), plus
//              headroom for uneven shards and the push logs' share of a budget
//              (EmbeddingTable::kPushLogShare): nothing is ever evicted. Prefilled by pushing
//              every key once, so every row exists and is cached.
//   cache N %  that table size x N % (rows and push logs together). RocksDB holds a row for every
//   key before the run (written
//              straight through RowStore in key order, as a restored checkpoint would hold it;
//              its files then sit in the OS page cache, so a miss costs CPU, not disk waits)
//              and the cache starts empty.
// Per set-up: a warm-up of training steps (untimed, on every core; the memory set-up, warm
// after its prefill, does only kInMemoryWarmupBatches), then three timed phases, each over its
// own batches and stopped after --batches batches or --phase_seconds, whichever comes first:
//   pull   training pulls (read_only = false: misses are cached, and may evict dirty rows).
//   push   pushes of one gradient per unique key.
//   train  pull then push of the same batch, as a worker's step; rows/s counts each row once.
// Between phases RocksDB is left to finish its background work, which is therefore not timed.
// The warm-up stops after --warmup_batches steps or --warmup_seconds, but not before the cache
// is full (up to kWarmupHardLimit x --warmup_seconds): a 10 % cache of 10 M keys fills after
// ~2,300 steps, and CLOCK settles a few thousand steps later. cached_rows says how full the
// cache was when timing started, warm_steps how long the warm-up was.
//
// Columns:
//   budget_MB                 the cache_bytes the table was created with.
//   cached_rows               rows cached when timing started (after the warm-up).
//   pull/s, push/s, train/s   unique rows per wall-clock second (all --threads together).
//   pull_vs, push_vs, trn_vs  the ratio to the memory set-up of the same dim.
//   pull%, push%, trn%        cache hits / (hits + misses) of the phase (EmbeddingTable::stats).
//   pbnd%, tbnd%              the bound of pull% and trn%: the hit rate of the best static
//                             choice of cached_rows keys (those in the most batches) over all
//                             --batches batches generated for the phase (StaticHitRateBound):
//                             a phase cut short by --phase_seconds may see fewer distinct keys
//                             than the cache holds, which would make any bound 100 %.
//                             Cached set-ups only. It has hindsight: over 10,000 batches it
//                             exceeds the hit rate of the distribution's hottest ranks
//                             (TopRanksHitRate, printed on the target line) by ~2 points.
//   miss_us, tmiss_us         wall-clock microseconds per miss of the pull and train phases,
//                             timed on the miss path itself (CacheStats::miss_nanos: RocksDB
//                             reads, write-back of dirty victims, filling the rows).
//   miss_cpu_us               the pull phase's miss path in CPU microseconds of the calling
//                             thread (CacheStats::miss_cpu_nanos): on a loaded machine
//                             miss_us also holds the waits for a core, this does not.
//   runs/miss, blk/miss       with --read_counts, per miss of the pull phase: the sorted runs
//                             (RocksDB files) whose bloom filter a lookup checked, and the
//                             blocks it read (RocksDB's PerfContext of the calling threads).
//   pull/cpu-s, push/cpu-s, trn/cpu-s
//                             rows per CPU second of the whole process (RocksDB's background
//                             threads included) during the phase: the cost per core, which other
//                             load on the machine does not change much (wall-clock rates drop by
//                             whatever share of the cores other processes take).
//   trn_cpu_vs                trn/cpu-s over the memory set-up's.
//   db_B/upd                  RocksDB bytes written (RowStore::BytesWritten: memtable flushes
//                             and compactions; the WAL is off) per row-update (pushed row) of
//                             the push and train phases. Counted from the start of the pull
//                             phase — with the warm-up's memtables flushed before — until
//                             RocksDB is idle after a memtable flush following the train phase,
//                             so the flushes and compactions of the phases' write-backs are
//                             counted in full. Dirty rows still cached at the end are not: in a
//                             steady state as many become dirty as are written back. Lumpy: one
//                             compaction may rewrite a whole level. All in memory: 0, since
//                             nothing is written between checkpoints.
//   stall_s                   seconds the push phase's writes waited for RocksDB's flushes and
//                             compactions to catch up (RowStore::WriteStallMicros).
//   spills, spill_s, ingest_s the push phase's spills of push logs (EmbeddingTable::stats), the
//                             seconds the spiller spent writing their files, and ingesting them
//                             (every shard locked: pushes and pulls wait).
//   wait_s                    seconds the push phase's pushes waited for a spill because they
//                             found a push log full.
//   wb/upd                    dirty rows written back per row-update, same window.
//   cache_MB                  memory the cache shards allocated (stats().memory_bytes).
//   readers_MB                memory of RocksDB's open files outside the block cache after the
//                             phases (RowStore::TableReaderBytes): PlainTable's hash index.
//   rss_MB                    resident anonymous memory of the process after the set-up's
//                             phases (not the page cache's pages of the files RocksDB maps).
//   prep_s                    prefill (memory) or RocksDB seeding (first cached set-up) time.
//   warm_s, warm_steps        warm-up time (including RocksDB going idle) and steps.
//
// Usage:
//   table_bench                    dims 16 and 64, 10 M keys, memory / 10 % / 1 %
//   table_bench --quick            a smoke test: 200 K keys, a fraction of a second per phase
//   [--keys=N --zipf=S --batch=B --batches=N --phase_seconds=S --warmup_batches=N
//    --warmup_seconds=S --dims=16,64 --cache_fractions=1,0.1,0.01 --threads=T --hot_key
//    --dir=DIR --json=PATH --v=1 (warm-up progress)]
//   [--nommap_reads --nopartitioned_index --block_bytes=4096]  RocksDB's read path before
//                                  (RowStoreOptions), to compare the cost of a miss
//   [--hash_index_prefix_bytes=N --sorted_runs_before_compaction=N --noverify_read_checksums]
//   [--plain_table]                rows in RocksDB PlainTable files (RowStoreOptions::plain_table),
//                                  without merged pushes
//                                  other RowStoreOptions of the read path
//   [--read_counts]                sorted runs probed and blocks read per miss
//   [--l2=X]                       the table's TableConfig.l2 (its cost on push)
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/feature_key.h"
#include "common/proto/config.pb.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "ps/embedding_table.h"
#include "ps/initializer.h"
#include "ps/optimizer.h"
#include "ps/row_cache.h"
#include "ps/row_layout.h"
#include "ps/row_store.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"
#include "tests/bench/bench_json.h"
#include "tests/bench/bench_main.h"

DEFINE_int64(keys, 10000000, "Key space: ranks 1..keys, each a distinct feature key.");
DEFINE_double(zipf, 1.1, "Zipf exponent s of the access distribution over key ranks (> 0).");
DEFINE_int32(batch, 4096, "Keys drawn per batch, before deduplication.");
DEFINE_int32(batches, 3000, "Batches generated per timed phase (pull, push, train).");
DEFINE_double(phase_seconds, 2.0,
              "A timed phase stops after this long even if batches are left; rows/s counts "
              "the batches done.");
DEFINE_int32(warmup_batches, 4000,
             "Training steps before the timed phases of a cached set-up (see --warmup_seconds).");
DEFINE_double(warmup_seconds, 15.0,
              "A warm-up stops after this long even if steps are left, once the cache is full.");
DEFINE_int32(warmup_threads, 0, "Threads of the (untimed) prefill and warm-up; 0 = one per core.");
DEFINE_string(dims, "16,64", "Comma-separated embedding dims.");
DEFINE_string(cache_fractions, "1,0.1,0.01",
              "Comma-separated cache sizes as fractions of the whole table; 1 = all in memory.");
DEFINE_int32(threads, 1,
             "Threads calling the table at once in the timed phases; batches are dealt "
             "round-robin.");
DEFINE_bool(hot_key, false,
            "Every batch also holds key rank 1, as a bias row or a popular item would be: one "
            "row every request updates.");
DEFINE_int32(shards, granary::EmbeddingTable::kDefaultShards, "Cache shards of the table.");
DEFINE_string(dir, "/tmp", "A fresh folder is made (and removed at the end) under this one.");
DEFINE_string(json, "", "If set, the result rows are also written here as a JSON array.");
DEFINE_bool(
    quick, false,
    "Smoke test: 200 K keys, 50 timed batches or 0.5 s per phase, 100 warm-up steps or 2 s, "
    "unless those flags are given.");
DEFINE_uint64(memtable_mb, granary::RowStoreOptions().memtable_bytes >> 20,
              "RocksDB memtable bound of the cached set-ups (RowStoreOptions::memtable_bytes).");
DEFINE_uint64(seed, 1, "Seed of the Zipf draws and of the gradients.");
DEFINE_bool(mmap_reads, granary::RowStoreOptions().mmap_reads,
            "RocksDB reads files through mmap (RowStoreOptions::mmap_reads).");
DEFINE_uint64(block_bytes, granary::RowStoreOptions().block_bytes,
              "RocksDB data block size (RowStoreOptions::block_bytes).");
DEFINE_bool(partitioned_index, granary::RowStoreOptions().partitioned_index,
            "RocksDB files have partitioned, pinned indexes (RowStoreOptions::partitioned_index).");
DEFINE_int32(sorted_runs_before_compaction,
             granary::RowStoreOptions().sorted_runs_before_compaction,
             "Sorted runs a table gathers before compacting them "
             "(RowStoreOptions::sorted_runs_before_compaction).");
DEFINE_bool(verify_read_checksums, granary::RowStoreOptions().verify_read_checksums,
            "A miss verifies its block's checksum (RowStoreOptions::verify_read_checksums).");
DEFINE_int32(hash_index_prefix_bytes, granary::RowStoreOptions().hash_index_prefix_bytes,
             "RocksDB files of rows have a hash index over the keys' first N bytes, 0 = none "
             "(RowStoreOptions::hash_index_prefix_bytes).");
DEFINE_bool(plain_table, granary::RowStoreOptions().plain_table,
            "Rows in RocksDB PlainTable files, hash-indexed (RowStoreOptions::plain_table); "
            "pushes to uncached rows then read them instead of merging.");
DEFINE_double(l2, 0, "TableConfig.l2 of the table (0: none), to time its cost on push.");
DEFINE_bool(read_counts, false,
            "Count RocksDB's work per miss on the serving threads (its PerfContext at "
            "kEnableCount, which itself costs a little CPU): the runs/miss and blk/miss columns.");

namespace granary {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kTable[] = "bench";
constexpr char kKeyField[] = "table_bench";
constexpr float kLearningRate = 0.01f;
constexpr float kInitScale = 0.01f;
constexpr uint64_t kInitSeed = 7;
// Gradients are uniform in [-kGradientScale, kGradientScale].
constexpr float kGradientScale = 0.1f;
// The memory set-up's cache is this much larger than the table: keys spread over shards
// unevenly (a shard of 625 K expected rows varies by ~800), and it must never evict.
constexpr double kInMemoryHeadroom = 1.05;
// The memory set-up is warm after its prefill; a few steps warm the CPU caches only.
constexpr int kInMemoryWarmupBatches = 100;
// Warm-up steps between checks whether the cache is full (and progress lines with --v=1).
constexpr size_t kWarmupWindow = 250;
// A warm-up whose cache is not full yet goes on until this many times --warmup_seconds.
constexpr int kWarmupHardLimit = 3;
// Rows per WriteBatch when RocksDB is seeded.
constexpr size_t kSeedBatchRows = 4096;
// RocksDB counts as idle (see WaitForRocksDbIdle) once the process, whose own threads then
// sleep, used less than this share of one core over kIdlePolls polls in a row, with
// BytesWritten unchanged.
constexpr double kIdleCpuShare = 0.05;
constexpr int kIdlePolls = 3;
constexpr auto kIdlePollInterval = std::chrono::milliseconds(50);
constexpr auto kIdleTimeout = std::chrono::seconds(300);
// --quick defaults.
constexpr int64_t kQuickKeys = 200000;
constexpr int kQuickBatches = 50;
constexpr int kQuickWarmupBatches = 100;
constexpr double kQuickPhaseSeconds = 0.5;
constexpr double kQuickWarmupSeconds = 2;
// Targets from the issue: at dim kTargetDim, ≥ kTargetRowsPerCore row-updates/s per core all
// in memory, and the kTargetCacheFraction cache ≥ kTargetRatio of that.
constexpr int kTargetDim = 16;
constexpr double kTargetRowsPerCore = 5e6;
constexpr double kTargetCacheFraction = 0.1;
constexpr double kTargetRatio = 0.5;
constexpr double kBytesPerMB = 1 << 20;

size_t RoundUpTo8(size_t bytes) { return (bytes + 7) & ~size_t{7}; }

// SplitMix64: small, fast and good enough for sampling.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Zipf over ranks 1..n with P(k) ∝ k^-exponent, by rejection-inversion (W. Hörmann and
// G. Derflinger, "Rejection-inversion to generate variates from monotone discrete
// distributions", ACM TOMACS 6(3), 1996), as in Apache Commons RNG: O(1) time and memory per
// draw, where a CDF table over 10 M ranks would take 80 MB. REQUIRES: exponent > 0, n >= 1.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double exponent)
      : n_(n),
        exponent_(exponent),
        h_integral_x1_(HIntegral(1.5) - 1),
        h_integral_n_(HIntegral(static_cast<double>(n) + 0.5)),
        s_(2 - HIntegralInverse(HIntegral(2.5) - H(2))) {}

  uint64_t Sample(Random& random) const {
    while (true) {
      double u = h_integral_n_ + random.NextDouble() * (h_integral_x1_ - h_integral_n_);
      double x = HIntegralInverse(u);
      double rounded = std::floor(x + 0.5);
      uint64_t k = rounded < 1 ? 1 : std::min(n_, static_cast<uint64_t>(rounded));
      double kd = static_cast<double>(k);
      if (kd - x <= s_ || u >= HIntegral(kd + 0.5) - H(kd)) return k;
    }
  }

 private:
  // (exp(x) - 1) / x and log(1 + x) / x, accurate near 0.
  static double ExpM1OverX(double x) {
    return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
  }
  static double Log1POverX(double x) {
    return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
  }
  double H(double x) const { return std::exp(-exponent_ * std::log(x)); }
  double HIntegral(double x) const {
    double log_x = std::log(x);
    return ExpM1OverX((1 - exponent_) * log_x) * log_x;
  }
  double HIntegralInverse(double x) const {
    double t = std::max(-1.0, x * (1 - exponent_));
    return std::exp(Log1POverX(t) * x);
  }

  const uint64_t n_;
  const double exponent_;
  const double h_integral_x1_;
  const double h_integral_n_;
  const double s_;
};

// The feature key standing for `rank`.
uint64_t KeyOfRank(uint64_t field_seed, uint64_t rank) {
  return FeatureKey(field_seed,
                    std::string_view(reinterpret_cast<const char*>(&rank), sizeof rank));
}

// Batches of sorted unique keys, stored back to back.
class Batches {
 public:
  size_t count() const { return begin_.size() - 1; }
  absl::Span<const uint64_t> batch(size_t i) const {
    return absl::Span<const uint64_t>(keys_.data() + begin_[i], begin_[i + 1] - begin_[i]);
  }
  size_t total_keys() const { return keys_.size(); }
  size_t max_batch_keys() const { return max_batch_keys_; }

  void Add(absl::Span<const uint64_t> keys) {
    keys_.insert(keys_.end(), keys.begin(), keys.end());
    begin_.push_back(keys_.size());
    max_batch_keys_ = std::max(max_batch_keys_, keys.size());
  }

 private:
  std::vector<uint64_t> keys_;
  std::vector<size_t> begin_ = {0};
  size_t max_batch_keys_ = 0;
};

// `count` batches of `draws` Zipf draws each, plus key rank 1 if `hot_key`, deduplicated and
// sorted as KVWorker sends them.
Batches ZipfBatches(const ZipfSampler& sampler, Random& random, int count, int draws,
                    bool hot_key) {
  const uint64_t field_seed = FieldSeed(kKeyField);
  Batches batches;
  std::vector<uint64_t> keys(draws);
  for (int b = 0; b < count; ++b) {
    for (uint64_t& key : keys) key = KeyOfRank(field_seed, sampler.Sample(random));
    std::vector<uint64_t> unique = keys;
    if (hot_key) unique.push_back(KeyOfRank(field_seed, 1));
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    batches.Add(unique);
  }
  return batches;
}

// Every key once, in batches of `size` consecutive ranks.
Batches EveryKey(uint64_t keys, size_t size) {
  const uint64_t field_seed = FieldSeed(kKeyField);
  Batches batches;
  std::vector<uint64_t> batch;
  for (uint64_t rank = 1; rank <= keys; ++rank) {
    batch.push_back(KeyOfRank(field_seed, rank));
    if (batch.size() == size || rank == keys) {
      batches.Add(batch);
      batch.clear();
    }
  }
  return batches;
}

proto::TableConfig BenchTableConfig(int dim) {
  proto::TableConfig config;
  config.set_name(kTable);
  config.set_dim(static_cast<uint32_t>(dim));
  config.mutable_initializer()->set_kind(proto::InitializerConfig::UNIFORM);
  config.mutable_initializer()->set_scale(kInitScale);
  config.mutable_initializer()->set_seed(kInitSeed);
  config.mutable_optimizer()->mutable_adagrad()->set_learning_rate(kLearningRate);
  if (FLAGS_l2 > 0) config.set_l2(static_cast<float>(FLAGS_l2));
  return config;
}

// ---- Process and RocksDB probes ---------------------------------------------------------------

// Resident anonymous memory: not the pages of the files RocksDB maps
// (RowStoreOptions::mmap_reads), which are the kernel's page cache.
uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0, file_backed_pages = 0;
  statm >> size_pages >> resident_pages >> file_backed_pages;
  return (resident_pages - file_backed_pages) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU time of the calling thread.
double ThreadCpuSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec + now.tv_nsec * 1e-9;
}

// Waits until RocksDB's background flushes and compactions are done. RocksDB does not say so
// through RowStore, so this watches from outside: the calling thread sleeps, and no other
// benchmark thread runs, so CPU time the process still burns is RocksDB's.
void WaitForRocksDbIdle(const RowStore& store) {
  const Clock::time_point deadline = Clock::now() + kIdleTimeout;
  int idle_polls = 0;
  double cpu = ProcessCpuSeconds();
  uint64_t written = store.BytesWritten();
  while (idle_polls < kIdlePolls) {
    if (Clock::now() > deadline) {
      LOG(WARNING) << "RocksDB at " << store.path() << " still busy after "
                   << std::chrono::duration_cast<std::chrono::seconds>(kIdleTimeout).count()
                   << " s; measuring anyway";
      return;
    }
    std::this_thread::sleep_for(kIdlePollInterval);
    double now_cpu = ProcessCpuSeconds();
    uint64_t now_written = store.BytesWritten();
    bool idle =
        now_cpu - cpu < kIdleCpuShare * std::chrono::duration<double>(kIdlePollInterval).count() &&
        now_written == written;
    idle_polls = idle ? idle_polls + 1 : 0;
    cpu = now_cpu;
    written = now_written;
  }
}

// Flushes RocksDB's memtables (the WAL is off, so they hold every write not yet in a file).
// RowStore offers no flush of its own; a checkpoint flushes first and hard-links the files,
// so one made to a scratch folder and removed again costs little else.
absl::Status FlushMemtables(RowStore& store, const std::filesystem::path& scratch) {
  absl::Status status = store.Checkpoint(scratch.string());
  std::error_code ignored;
  std::filesystem::remove_all(scratch, ignored);
  return status;
}

// The store of the benchmark's one table, with the server's default options.
absl::StatusOr<std::unique_ptr<RowStore>> OpenRowStore(const std::string& path,
                                                       const proto::TableConfig& config) {
  RowStoreOptions options;
  options.path = path;
  options.memtable_bytes = FLAGS_memtable_mb << 20;
  options.mmap_reads = FLAGS_mmap_reads;
  options.partitioned_index = FLAGS_partitioned_index;
  options.block_bytes = FLAGS_block_bytes;
  options.sorted_runs_before_compaction = FLAGS_sorted_runs_before_compaction;
  options.verify_read_checksums = FLAGS_verify_read_checksums;
  options.hash_index_prefix_bytes = FLAGS_hash_index_prefix_bytes;
  options.plain_table = FLAGS_plain_table;
  // A PlainTable store takes no merge operator: its pushes to uncached rows read them.
  if (options.plain_table) return RowStore::Open(options, {kTable});
  absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> merge_operator =
      EmbeddingTable::NewMergeOperator(config);
  if (!merge_operator.ok()) return merge_operator.status();
  options.merge_operators[kTable] = *std::move(merge_operator);
  return RowStore::Open(options, {kTable});
}

// Writes the record EmbeddingTable creates for a key on first touch (ps/row_layout.h): zero
// metadata, the initializer's values and the optimizer's initial slots.
void WriteInitialRecord(const proto::TableConfig& config, const RowLayout& layout,
                        const Optimizer& optimizer, uint64_t key, char* record) {
  *layout.meta(record) = RowMeta();
  InitializeRow(config.initializer(), key, layout.dim(), layout.values(record));
  optimizer.InitSlots(layout.values(record), layout.slots(record), layout.dim());
}

// Fills an empty RocksDB at `path` with the initial row of every key, in key order so that
// files never overlap and compaction has nothing to merge. The store is closed on return.
absl::Status SeedRowStore(const std::string& path, const proto::TableConfig& config,
                          uint64_t keys) {
  absl::StatusOr<std::unique_ptr<RowStore>> store = OpenRowStore(path, config);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(config.optimizer());
  if (!optimizer.ok()) return optimizer.status();
  const RowLayout layout(static_cast<int>(config.dim()), (*optimizer)->num_slots());
  const uint64_t field_seed = FieldSeed(kKeyField);
  std::vector<uint64_t> sorted(keys);
  for (uint64_t rank = 1; rank <= keys; ++rank) sorted[rank - 1] = KeyOfRank(field_seed, rank);
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint64_t> record(RoundUpTo8(layout.row_bytes()) / sizeof(uint64_t));
  char* bytes = reinterpret_cast<char*>(record.data());
  RowStore::Batch batch = (*store)->NewBatch();
  for (size_t i = 0; i < sorted.size(); ++i) {
    WriteInitialRecord(config, layout, **optimizer, sorted[i], bytes);
    batch.PutRow(0, sorted[i], bytes, layout.row_bytes());
    if (batch.count() < kSeedBatchRows && i + 1 < sorted.size()) continue;
    absl::Status status = (*store)->Write(batch);
    if (!status.ok()) return status;
    batch = (*store)->NewBatch();
  }
  return absl::OkStatus();
}

// ---- Timed phases -----------------------------------------------------------------------------

enum class Op { kPull, kPush, kTrain };

struct Phase {
  double seconds = 0;
  uint64_t batches = 0;
  uint64_t rows = 0;
  double thread_cpu_seconds = 0;   // of the calling threads together
  double process_cpu_seconds = 0;  // of the whole process, RocksDB's threads included
  // RocksDB's PerfContext of the calling threads (--read_counts): sorted runs whose filter a
  // lookup checked (bloom_sst_hit_count + bloom_sst_miss_count) and blocks read.
  uint64_t runs_probed = 0;
  uint64_t blocks_read = 0;
  CacheStats stats;  // change during the phase (cached_rows and memory_bytes: at the end)
  double rows_per_second() const { return seconds > 0 ? rows / seconds : 0; }
  double rows_per_cpu_second() const {
    return process_cpu_seconds > 0 ? rows / process_cpu_seconds : 0;
  }
  double hit_rate() const {
    uint64_t lookups = stats.hits + stats.misses + stats.pushes_merged;
    return lookups > 0 ? static_cast<double>(stats.hits) / lookups : 0;
  }
  // Microseconds per miss spent on the miss path (CacheStats::miss_nanos).
  double micros_per_miss() const {
    return stats.misses > 0 ? stats.miss_nanos * 1e-3 / stats.misses : 0;
  }
  // CPU microseconds of the serving thread per miss (CacheStats::miss_cpu_nanos).
  double cpu_micros_per_miss() const {
    return stats.misses > 0 ? stats.miss_cpu_nanos * 1e-3 / stats.misses : 0;
  }
  // The hit rate of the best static choice of as many rows as the cache held, over every batch
  // generated for this phase (StaticHitRateBound); 0 for the memory set-up.
  double hit_rate_bound = 0;
  // The same for the hottest ranks of the distribution (TopRanksHitRate).
  double top_ranks_hit_rate = 0;
};

absl::Status RunBatch(EmbeddingTable& table, Op op, absl::Span<const uint64_t> keys,
                      const std::vector<float>& grads, std::vector<float>& values) {
  if (op != Op::kPush) {
    absl::Status status = table.Pull(keys, values.data(), /*read_only=*/false);
    if (!status.ok()) return status;
  }
  if (op != Op::kPull) return table.Push(keys, grads.data());
  return absl::OkStatus();
}

// Runs `op` over batches [begin, end) on `threads` threads (thread t takes batches begin + t,
// begin + t + threads, ...) until they are done or `deadline` passed, and times the whole.
// Returns the first error.
absl::StatusOr<Phase> RunPhase(EmbeddingTable& table, Op op, const Batches& batches, size_t begin,
                               size_t end, int threads, Clock::time_point deadline,
                               const std::vector<float>& grads) {
  struct ThreadRun {
    absl::Status status;
    uint64_t batches = 0;
    uint64_t rows = 0;
    double cpu_seconds = 0;
    uint64_t runs_probed = 0;
    uint64_t blocks_read = 0;
  };
  std::vector<ThreadRun> runs(threads);
  const CacheStats before = table.stats();
  const double process_cpu_start = ProcessCpuSeconds();
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ThreadRun& run = runs[t];
      std::vector<float> values(batches.max_batch_keys() * table.dim());
      if (FLAGS_read_counts) {
        rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
        rocksdb::get_perf_context()->Reset();
      }
      const double cpu_start = ThreadCpuSeconds();
      for (size_t b = begin + t; b < end && run.status.ok() && Clock::now() < deadline;
           b += threads) {
        run.status = RunBatch(table, op, batches.batch(b), grads, values);
        ++run.batches;
        run.rows += batches.batch(b).size();
      }
      run.cpu_seconds = ThreadCpuSeconds() - cpu_start;
      if (FLAGS_read_counts) {
        const rocksdb::PerfContext& perf = *rocksdb::get_perf_context();
        run.runs_probed = perf.bloom_sst_hit_count + perf.bloom_sst_miss_count;
        run.blocks_read = perf.block_read_count;
        rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
      }
    });
  }
  for (std::thread& thread : pool) thread.join();
  Phase phase;
  phase.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  phase.process_cpu_seconds = ProcessCpuSeconds() - process_cpu_start;
  for (const ThreadRun& run : runs) {
    if (!run.status.ok()) return run.status;
    phase.batches += run.batches;
    phase.rows += run.rows;
    phase.thread_cpu_seconds += run.cpu_seconds;
    phase.runs_probed += run.runs_probed;
    phase.blocks_read += run.blocks_read;
  }
  const CacheStats after = table.stats();
  phase.stats.hits = after.hits - before.hits;
  phase.stats.misses = after.misses - before.misses;
  phase.stats.miss_nanos = after.miss_nanos - before.miss_nanos;
  phase.stats.miss_cpu_nanos = after.miss_cpu_nanos - before.miss_cpu_nanos;
  phase.stats.pushes_merged = after.pushes_merged - before.pushes_merged;
  phase.stats.rows_written = after.rows_written - before.rows_written;
  phase.stats.pushes_not_admitted = after.pushes_not_admitted - before.pushes_not_admitted;
  phase.stats.spills = after.spills - before.spills;
  phase.stats.spill_write_micros = after.spill_write_micros - before.spill_write_micros;
  phase.stats.spill_ingest_micros = after.spill_ingest_micros - before.spill_ingest_micros;
  phase.stats.push_wait_micros = after.push_wait_micros - before.push_wait_micros;
  phase.stats.cached_rows = after.cached_rows;
  phase.stats.memory_bytes = after.memory_bytes;
  return phase;
}

// The hit rate of the best static choice of `rows` keys for batches [0, count): the `rows`
// keys in the most batches, over all the batches' keys. No replacement policy does better
// on these batches without knowing the future.
double StaticHitRateBound(const Batches& batches, size_t count, uint64_t rows) {
  count = std::min(count, batches.count());
  absl::flat_hash_map<uint64_t, uint32_t> batches_of_key;
  uint64_t lookups = 0;
  for (size_t b = 0; b < count; ++b) {
    for (uint64_t key : batches.batch(b)) ++batches_of_key[key];
    lookups += batches.batch(b).size();
  }
  std::vector<uint32_t> counts;
  counts.reserve(batches_of_key.size());
  for (const auto& [key, batch_count] : batches_of_key) counts.push_back(batch_count);
  const size_t chosen = std::min<size_t>(rows, counts.size());
  std::nth_element(counts.begin(), counts.begin() + chosen, counts.end(), std::greater<>());
  uint64_t hits = 0;
  for (size_t i = 0; i < chosen; ++i) hits += counts[i];
  return lookups > 0 ? static_cast<double>(hits) / lookups : 0;
}

// The hit rate over every batch of a cache holding exactly the `rows` hottest ranks of the
// Zipf distribution: the best static choice for the distribution, without the hindsight of
// StaticHitRateBound (which may pick keys that merely happened to recur in these batches).
double TopRanksHitRate(const Batches& batches, uint64_t rows) {
  const uint64_t field_seed = FieldSeed(kKeyField);
  absl::flat_hash_set<uint64_t> hottest;
  hottest.reserve(rows);
  for (uint64_t rank = 1; rank <= rows; ++rank) hottest.insert(KeyOfRank(field_seed, rank));
  uint64_t hits = 0;
  for (size_t b = 0; b < batches.count(); ++b) {
    for (uint64_t key : batches.batch(b)) hits += hottest.contains(key);
  }
  return batches.total_keys() > 0 ? static_cast<double>(hits) / batches.total_keys() : 0;
}

// ---- The benchmark ----------------------------------------------------------------------------

struct Workload {
  uint64_t keys = 0;
  Batches warmup;
  Batches pull;
  Batches push;
  Batches train;
  std::vector<float> grads;  // max_batch_keys x max dim, reused by every push
};

struct Row {
  int dim = 0;
  std::string setup;
  double cache_fraction = 0;
  uint64_t cache_budget_bytes = 0;
  uint64_t warmup_steps = 0;
  uint64_t cached_rows_at_start = 0;  // after the warm-up
  Phase pull;
  Phase push;
  Phase train;
  // From the start of the pull phase until RocksDB is idle after the train phase (see the file
  // comment).
  uint64_t rocksdb_bytes_written = 0;
  uint64_t rss_bytes = 0;
  uint64_t table_reader_bytes = 0;
  // Time the push phase's writes waited for RocksDB's flushes and compactions to catch up.
  double push_stall_seconds = 0;
  double prepare_seconds = 0;
  double warmup_seconds = 0;
  // Ratios to the memory set-up of the same dim; 0 if there is none.
  double pull_vs_memory = 0;
  double push_vs_memory = 0;
  double train_vs_memory = 0;
  // push/cpu-s over the memory set-up's: the ratio per core, whatever else loads the machine.
  double push_cpu_vs_memory = 0;
  // trn/cpu-s over the memory set-up's.
  double train_cpu_vs_memory = 0;

  // Row-updates (pushed rows) of the timed phases.
  uint64_t updates() const { return push.rows + train.rows; }
  double rocksdb_bytes_per_update() const {
    return updates() > 0 ? static_cast<double>(rocksdb_bytes_written) / updates() : 0;
  }
  double written_rows_per_update() const {
    uint64_t written = pull.stats.rows_written + push.stats.rows_written + train.stats.rows_written;
    return updates() > 0 ? static_cast<double>(written) / updates() : 0;
  }
};

std::string SetupName(double fraction) {
  if (fraction >= 1) return "memory";
  return absl::StrFormat("cache %g%%", fraction * 100);
}

constexpr char kRowFormat[] =
    "%4s  %-10s %9s %11s %8s %8s %8s %7s %7s %7s %5s %5s %5s %5s %5s %7s %7s %8s %9s %8s %9s %9s "
    "%9s %10s "
    "%7s "
    "%6s %7s %8s %6s %8s %7s %8s %10s %8s %7s %6s %11s\n";

void PrintHeader() {
  absl::PrintF(kRowFormat, "dim", "setup", "budget_MB", "cached_rows", "pull/s", "push/s",
               "train/s", "pull_vs", "push_vs", "trn_vs", "pull%", "push%", "trn%", "pbnd%",
               "tbnd%", "miss_us", "tmiss_us", "miss_cpu_us", "runs/miss", "blk/miss", "pull/cpu-s",
               "push/cpu-s", "trn/cpu-s", "trn_cpu_vs", "stall_s", "spills", "spill_s", "ingest_s",
               "wait_s", "db_B/upd", "wb/upd", "cache_MB", "readers_MB", "rss_MB", "prep_s",
               "warm_s", "warm_steps");
}

std::string Ratio(double ratio) { return ratio > 0 ? absl::StrFormat("%.3f", ratio) : "-"; }

std::string Millions(double value) { return absl::StrFormat("%.3fM", value / 1e6); }

void PrintRow(const Row& row) {
  auto hit = [](const Phase& phase) { return absl::StrFormat("%.1f", 100 * phase.hit_rate()); };
  auto bound = [](const Phase& phase) {
    return phase.hit_rate_bound > 0 ? absl::StrFormat("%.1f", 100 * phase.hit_rate_bound) : "-";
  };
  auto miss_us = [](const Phase& phase) {
    return phase.stats.misses > 0 ? absl::StrFormat("%.2f", phase.micros_per_miss()) : "-";
  };
  auto miss_cpu_us = [](const Phase& phase) {
    return phase.stats.misses > 0 ? absl::StrFormat("%.2f", phase.cpu_micros_per_miss()) : "-";
  };
  // Per miss of the pull phase, with --read_counts.
  auto per_miss = [](const Phase& phase, uint64_t count) {
    return FLAGS_read_counts && phase.stats.misses > 0
               ? absl::StrFormat("%.2f", static_cast<double>(count) / phase.stats.misses)
               : "-";
  };
  absl::PrintF(kRowFormat, absl::StrCat(row.dim), row.setup,
               absl::StrFormat("%.0f", row.cache_budget_bytes / kBytesPerMB),
               absl::StrFormat("%.2fM", row.cached_rows_at_start / 1e6),
               Millions(row.pull.rows_per_second()), Millions(row.push.rows_per_second()),
               Millions(row.train.rows_per_second()), Ratio(row.pull_vs_memory),
               Ratio(row.push_vs_memory), Ratio(row.train_vs_memory), hit(row.pull), hit(row.push),
               hit(row.train), bound(row.pull), bound(row.train), miss_us(row.pull),
               miss_us(row.train), miss_cpu_us(row.pull), per_miss(row.pull, row.pull.runs_probed),
               per_miss(row.pull, row.pull.blocks_read), Millions(row.pull.rows_per_cpu_second()),
               Millions(row.push.rows_per_cpu_second()), Millions(row.train.rows_per_cpu_second()),
               Ratio(row.train_cpu_vs_memory), absl::StrFormat("%.2f", row.push_stall_seconds),
               absl::StrCat(row.push.stats.spills),
               absl::StrFormat("%.2f", row.push.stats.spill_write_micros * 1e-6),
               absl::StrFormat("%.2f", row.push.stats.spill_ingest_micros * 1e-6),
               absl::StrFormat("%.2f", row.push.stats.push_wait_micros * 1e-6),
               absl::StrFormat("%.1f", row.rocksdb_bytes_per_update()),
               absl::StrFormat("%.3f", row.written_rows_per_update()),
               absl::StrFormat("%.0f", row.train.stats.memory_bytes / kBytesPerMB),
               absl::StrFormat("%.0f", row.table_reader_bytes / kBytesPerMB),
               absl::StrFormat("%.0f", row.rss_bytes / kBytesPerMB),
               absl::StrFormat("%.1f", row.prepare_seconds),
               absl::StrFormat("%.1f", row.warmup_seconds), absl::StrCat(row.warmup_steps));
  std::fflush(stdout);
}

std::string PhaseJson(const char* name, const Phase& phase) {
  return absl::StrFormat(
      "\"%s_rows_per_s\": %.6g, \"%s_rows_per_cpu_s\": %.6g, \"%s_hit_rate\": %.6g, "
      "\"%s_rows\": %d, \"%s_seconds\": %.6g, \"%s_thread_cpu_seconds\": %.6g, "
      "\"%s_process_cpu_seconds\": %.6g, \"%s_hit_rate_bound\": %.6g, "
      "\"%s_micros_per_miss\": %.6g, \"%s_cpu_micros_per_miss\": %.6g, "
      "\"%s_top_ranks_hit_rate\": %.6g",
      name, phase.rows_per_second(), name, phase.rows_per_cpu_second(), name, phase.hit_rate(),
      name, phase.rows, name, phase.seconds, name, phase.thread_cpu_seconds, name,
      phase.process_cpu_seconds, name, phase.hit_rate_bound, name, phase.micros_per_miss(), name,
      phase.cpu_micros_per_miss(), name, phase.top_ranks_hit_rate);
}

std::string RowJson(const Row& row, const Workload& workload) {
  return absl::StrFormat(
      "  {\"dim\": %d, \"setup\": \"%s\", \"cache_fraction\": %g, \"keys\": %d, "
      "\"zipf\": %g, \"batch\": %d, \"threads\": %d, \"cache_budget_bytes\": %d, "
      "\"cached_rows_at_start\": %d, %s, %s, %s, \"pull_vs_memory\": %s, "
      "\"push_vs_memory\": %s, \"train_vs_memory\": %s, \"push_cpu_vs_memory\": %s, "
      "\"train_cpu_vs_memory\": %s, "
      "\"rocksdb_bytes_per_update\": %.6g, "
      "\"written_rows_per_update\": %.6g, \"push_stall_seconds\": %.6g, "
      "\"cache_memory_bytes\": %d, \"table_reader_bytes\": %d, \"rss_bytes\": %d, "
      "\"prepare_seconds\": %.6g, \"warmup_seconds\": %.6g, \"warmup_steps\": %d, "
      "\"hot_key\": %s}",
      row.dim, row.setup, row.cache_fraction, workload.keys, FLAGS_zipf, FLAGS_batch, FLAGS_threads,
      row.cache_budget_bytes, row.cached_rows_at_start, PhaseJson("pull", row.pull),
      PhaseJson("push", row.push), PhaseJson("train", row.train),
      JsonNumberOrNull(row.pull_vs_memory), JsonNumberOrNull(row.push_vs_memory),
      JsonNumberOrNull(row.train_vs_memory), JsonNumberOrNull(row.push_cpu_vs_memory),
      JsonNumberOrNull(row.train_cpu_vs_memory), row.rocksdb_bytes_per_update(),
      row.written_rows_per_update(), row.push_stall_seconds, row.train.stats.memory_bytes,
      row.table_reader_bytes, row.rss_bytes, row.prepare_seconds, row.warmup_seconds,
      row.warmup_steps, FLAGS_hot_key ? "true" : "false");
}

std::vector<std::string> RowsJson(const std::vector<Row>& rows, const Workload& workload) {
  std::vector<std::string> objects;
  for (const Row& row : rows) objects.push_back(RowJson(row, workload));
  return objects;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Everything of one dim that outlives a set-up: the seeded RocksDB of the cached set-ups.
struct DimState {
  int dim = 0;
  proto::TableConfig config;
  std::filesystem::path folder;
  uint64_t table_bytes = 0;  // every key's row in the cache: the memory set-up's budget
  bool seeded = false;
};

// Runs `op` over every batch of `batches` with the timed phases' threads and time limit.
absl::StatusOr<Phase> RunTimedPhase(EmbeddingTable& table, Op op, const Batches& batches,
                                    const std::vector<float>& grads) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(FLAGS_phase_seconds));
  // A mark to attach a profiler to one phase (perf record -p).
  VLOG(1) << "timed phase " << static_cast<int>(op) << " of dim " << table.dim() << " starts";
  return RunPhase(table, op, batches, 0, batches.count(), FLAGS_threads, deadline, grads);
}

int WarmupThreads() {
  if (FLAGS_warmup_threads > 0) return FLAGS_warmup_threads;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// Training steps over the warm-up batches (at most `max_batches` of them) until they are done
// or --warmup_seconds passed, but not before the cache is full (a window of steps cached no
// new row), unless kWarmupHardLimit x --warmup_seconds passed. Returns the steps done.
absl::StatusOr<uint64_t> WarmUp(EmbeddingTable& table, const Workload& workload,
                                size_t max_batches) {
  const auto limit = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(FLAGS_warmup_seconds));
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + limit;
  const Clock::time_point hard_deadline = start + kWarmupHardLimit * limit;
  const size_t end = std::min(max_batches, workload.warmup.count());
  size_t done = 0;
  bool full = false;
  uint64_t cached_rows = table.stats().cached_rows;
  while (done < end && Clock::now() < (full ? deadline : hard_deadline)) {
    absl::StatusOr<Phase> window =
        RunPhase(table, Op::kTrain, workload.warmup, done, std::min(end, done + kWarmupWindow),
                 WarmupThreads(), full ? deadline : hard_deadline, workload.grads);
    if (!window.ok()) return window.status();
    done += window->batches;
    full = window->stats.cached_rows == cached_rows;
    cached_rows = window->stats.cached_rows;
    VLOG(1) << "warm-up of dim " << table.dim() << ": " << done << " steps, hit rate "
            << window->hit_rate() << ", " << cached_rows << " rows cached, "
            << window->rows_per_second() << " rows/s";
  }
  return done;
}

// Measures one set-up of `state.dim` and returns its row.
absl::StatusOr<Row> MeasureSetup(DimState& state, double fraction, const Workload& workload) {
  Row row;
  row.dim = state.dim;
  row.setup = SetupName(fraction);
  row.cache_fraction = fraction;
  const bool in_memory = fraction >= 1;
  // The memory set-up's budget also covers the push logs' share, so every row is cached.
  const double in_memory_budget =
      kInMemoryHeadroom * EmbeddingTable::kPushLogShare / (EmbeddingTable::kPushLogShare - 1);
  row.cache_budget_bytes = static_cast<uint64_t>(static_cast<double>(state.table_bytes) *
                                                 (in_memory ? in_memory_budget : fraction));

  // The memory set-up starts from an empty RocksDB of its own; the cached ones share one
  // seeded with every key's row, opened afresh so that the table knows it holds rows.
  const std::filesystem::path path = state.folder / (in_memory ? "memory" : "seeded");
  const Clock::time_point prepare_start = Clock::now();
  if (!in_memory && !state.seeded) {
    absl::Status status = SeedRowStore(path.string(), state.config, workload.keys);
    if (!status.ok()) return status;
    state.seeded = true;
  }
  absl::StatusOr<std::unique_ptr<RowStore>> opened = OpenRowStore(path.string(), state.config);
  if (!opened.ok()) return opened.status();
  RowStore& store = **opened;
  UpdateStamp stamp;
  absl::StatusOr<std::unique_ptr<EmbeddingTable>> created =
      EmbeddingTable::Create(state.config, &store, 0, row.cache_budget_bytes, &stamp, FLAGS_shards);
  if (!created.ok()) return created.status();
  EmbeddingTable& table = **created;
  if (in_memory) {
    const Batches every_key = EveryKey(workload.keys, FLAGS_batch);
    absl::StatusOr<Phase> prefill =
        RunPhase(table, Op::kPush, every_key, 0, every_key.count(), WarmupThreads(),
                 Clock::time_point::max(), workload.grads);
    if (!prefill.ok()) return prefill.status();
  }
  WaitForRocksDbIdle(store);
  row.prepare_seconds = SecondsSince(prepare_start);

  const Clock::time_point warmup_start = Clock::now();
  absl::StatusOr<uint64_t> steps =
      WarmUp(table, workload, in_memory ? kInMemoryWarmupBatches : workload.warmup.count());
  if (!steps.ok()) return steps.status();
  row.warmup_steps = *steps;
  // RocksDB's writes are counted from here to the end: nothing of the warm-up may be pending.
  const std::filesystem::path scratch = state.folder / "flush-checkpoint";
  absl::Status status = FlushMemtables(store, scratch);
  if (!status.ok()) return status;
  WaitForRocksDbIdle(store);
  row.warmup_seconds = SecondsSince(warmup_start);
  row.cached_rows_at_start = table.stats().cached_rows;
  const uint64_t written_before = store.BytesWritten();

  absl::StatusOr<Phase> phase = RunTimedPhase(table, Op::kPull, workload.pull, workload.grads);
  if (!phase.ok()) return phase.status();
  row.pull = *phase;
  WaitForRocksDbIdle(store);
  const uint64_t stall_before = store.WriteStallMicros();
  phase = RunTimedPhase(table, Op::kPush, workload.push, workload.grads);
  if (!phase.ok()) return phase.status();
  row.push = *phase;
  row.push_stall_seconds = (store.WriteStallMicros() - stall_before) * 1e-6;
  WaitForRocksDbIdle(store);
  phase = RunTimedPhase(table, Op::kTrain, workload.train, workload.grads);
  if (!phase.ok()) return phase.status();
  row.train = *phase;
  status = FlushMemtables(store, scratch);
  if (!status.ok()) return status;
  WaitForRocksDbIdle(store);
  row.rocksdb_bytes_written = store.BytesWritten() - written_before;
  row.rss_bytes = ResidentBytes();
  row.table_reader_bytes = store.TableReaderBytes();
  if (!in_memory) {
    row.pull.hit_rate_bound =
        StaticHitRateBound(workload.pull, workload.pull.count(), row.cached_rows_at_start);
    row.train.hit_rate_bound =
        StaticHitRateBound(workload.train, workload.train.count(), row.cached_rows_at_start);
    row.pull.top_ranks_hit_rate = TopRanksHitRate(workload.pull, row.cached_rows_at_start);
  }
  return row;
}

absl::StatusOr<std::vector<int>> ParseInts(const std::string& flag, const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", part, "' is not a positive integer"));
    }
    values.push_back(value);
  }
  if (values.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  return values;
}

absl::StatusOr<std::vector<double>> ParseFractions(const std::string& text) {
  std::vector<double> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    double value = 0;
    if (!absl::SimpleAtod(part, &value) || !(value > 0 && value <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cache_fractions: '", part, "' is not in (0, 1]"));
    }
    values.push_back(value);
  }
  if (values.empty()) return absl::InvalidArgumentError("--cache_fractions is empty");
  // The memory set-up first: the others' ratios refer to it.
  std::stable_sort(values.begin(), values.end(), [](double a, double b) { return a > b; });
  return values;
}

// Removes the folder (and everything in it) when it goes out of scope.
class ScratchFolder {
 public:
  static absl::StatusOr<std::unique_ptr<ScratchFolder>> Create(const std::string& parent) {
    std::string pattern = (std::filesystem::path(parent) / "table_bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create a folder like ", pattern, ": ", std::strerror(errno)));
    }
    return std::unique_ptr<ScratchFolder>(new ScratchFolder(pattern));
  }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit ScratchFolder(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// The targets, read off this run. Wall-clock rates drop when other processes share
// the cores; the per-CPU-second rate says what one core does when it is not shared.
void PrintTargets(const std::vector<Row>& rows) {
  for (const Row& row : rows) {
    if (row.dim != kTargetDim) continue;
    if (row.cache_fraction >= 1) {
      double per_core = row.push.rows_per_second() / FLAGS_threads;
      absl::PrintF(
          "target: dim %d all in memory, push %.2f M row-updates/s per core (>= %.0f M): %s "
          "(%.2f M per CPU-second)\n",
          row.dim, per_core / 1e6, kTargetRowsPerCore / 1e6,
          per_core >= kTargetRowsPerCore ? "met" : "MISSED", row.push.rows_per_cpu_second() / 1e6);
    } else if (std::abs(row.cache_fraction - kTargetCacheFraction) < 1e-9 &&
               row.push_vs_memory > 0) {
      absl::PrintF(
          "target: dim %d %s, push at %.3f of all in memory (>= %.2f): %s (train step: %.3f; "
          "per CPU-second: push at %.3f)\n",
          row.dim, row.setup, row.push_vs_memory, kTargetRatio,
          row.push_vs_memory >= kTargetRatio ? "met" : "MISSED", row.train_vs_memory,
          row.push_cpu_vs_memory);
      const bool met = row.train_vs_memory >= kTargetRatio && row.pull_vs_memory >= kTargetRatio;
      absl::PrintF(
          "target: dim %d %s, train step at %.3f and pull at %.3f of all in memory (both >= "
          "%.2f): %s (train per CPU-second at %.3f; pull hit rate %.1f %% of bound %.1f %%, "
          "hottest ranks %.1f %%; %.2f us per miss, %.2f us of CPU)\n",
          row.dim, row.setup, row.train_vs_memory, row.pull_vs_memory, kTargetRatio,
          met ? "met" : "MISSED", row.train_cpu_vs_memory, 100 * row.pull.hit_rate(),
          100 * row.pull.hit_rate_bound, 100 * row.pull.top_ranks_hit_rate,
          row.pull.micros_per_miss(), row.pull.cpu_micros_per_miss());
    }
  }
}

absl::Status RunBenchmark(std::vector<Row>* rows, Workload* workload_out) {
  absl::StatusOr<std::vector<int>> dims = ParseInts("dims", FLAGS_dims);
  if (!dims.ok()) return dims.status();
  absl::StatusOr<std::vector<double>> fractions = ParseFractions(FLAGS_cache_fractions);
  if (!fractions.ok()) return fractions.status();
  absl::StatusOr<std::unique_ptr<ScratchFolder>> scratch = ScratchFolder::Create(FLAGS_dir);
  if (!scratch.ok()) return scratch.status();

  const Clock::time_point generate_start = Clock::now();
  Workload& workload = *workload_out;
  workload.keys = static_cast<uint64_t>(FLAGS_keys);
  const ZipfSampler sampler(workload.keys, FLAGS_zipf);
  // One thread and one random stream per set of batches; the sets are independent draws.
  struct BatchSet {
    Batches* batches;
    int count;
  };
  const BatchSet sets[] = {{&workload.warmup, FLAGS_warmup_batches},
                           {&workload.pull, FLAGS_batches},
                           {&workload.push, FLAGS_batches},
                           {&workload.train, FLAGS_batches}};
  std::vector<std::thread> generators;
  for (size_t i = 0; i < std::size(sets); ++i) {
    generators.emplace_back([&, i] {
      Random random(FLAGS_seed + i);
      *sets[i].batches = ZipfBatches(sampler, random, sets[i].count, FLAGS_batch, FLAGS_hot_key);
    });
  }
  for (std::thread& generator : generators) generator.join();
  const int max_dim = *std::max_element(dims->begin(), dims->end());
  workload.grads.resize((static_cast<size_t>(FLAGS_batch) + 1) * max_dim);  // + the hot key
  Random random(FLAGS_seed + std::size(sets));
  for (float& grad : workload.grads) {
    grad = static_cast<float>((2 * random.NextDouble() - 1) * kGradientScale);
  }
  absl::PrintF(
      "table_bench: %d keys, Zipf(%g)%s, batches of %d draws = %.0f unique keys on average, "
      "timed phases of <= %d batches or %g s on %d thread(s), warm-up of <= %d steps or %g s on "
      "%d thread(s), %d shards, Adagrad, in %s (batches generated in %.1f s)\n\n",
      workload.keys, FLAGS_zipf, FLAGS_hot_key ? " + key rank 1 in every batch" : "", FLAGS_batch,
      static_cast<double>(workload.pull.total_keys()) / workload.pull.count(), FLAGS_batches,
      FLAGS_phase_seconds, FLAGS_threads, FLAGS_warmup_batches, FLAGS_warmup_seconds,
      WarmupThreads(), FLAGS_shards, (*scratch)->path().string(), SecondsSince(generate_start));
  PrintHeader();

  for (int dim : *dims) {
    DimState state;
    state.dim = dim;
    state.config = BenchTableConfig(dim);
    state.folder = (*scratch)->path() / absl::StrCat("dim-", dim);
    absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(state.config.optimizer());
    if (!optimizer.ok()) return optimizer.status();
    const RowLayout layout(dim, (*optimizer)->num_slots());
    state.table_bytes =
        workload.keys * (RoundUpTo8(layout.row_bytes()) + RowCache::kMaxOverheadBytesPerRow);
    std::optional<Row> memory_row;
    for (double fraction : *fractions) {
      absl::StatusOr<Row> row = MeasureSetup(state, fraction, workload);
      if (!row.ok()) {
        return absl::Status(row.status().code(), absl::StrCat("dim ", dim, " ", SetupName(fraction),
                                                              ": ", row.status().message()));
      }
      if (memory_row.has_value()) {
        auto ratio = [](const Phase& phase, const Phase& memory) {
          return memory.rows_per_second() > 0 ? phase.rows_per_second() / memory.rows_per_second()
                                              : 0;
        };
        row->pull_vs_memory = ratio(row->pull, memory_row->pull);
        row->push_vs_memory = ratio(row->push, memory_row->push);
        row->train_vs_memory = ratio(row->train, memory_row->train);
        if (memory_row->push.rows_per_cpu_second() > 0) {
          row->push_cpu_vs_memory =
              row->push.rows_per_cpu_second() / memory_row->push.rows_per_cpu_second();
        }
        if (memory_row->train.rows_per_cpu_second() > 0) {
          row->train_cpu_vs_memory =
              row->train.rows_per_cpu_second() / memory_row->train.rows_per_cpu_second();
        }
      } else if (fraction >= 1) {
        row->pull_vs_memory = row->push_vs_memory = row->train_vs_memory = 1;
        row->push_cpu_vs_memory = row->train_cpu_vs_memory = 1;
      }
      if (fraction >= 1) memory_row = *row;
      PrintRow(*row);
      rows->push_back(*std::move(row));
    }
    std::error_code ignored;
    std::filesystem::remove_all(state.folder, ignored);
  }
  absl::PrintF("\n");
  PrintTargets(*rows);
  return absl::OkStatus();
}

absl::Status CheckFlags() {
  if (FLAGS_keys < 1 || FLAGS_batch < 1 || FLAGS_batches < 1 || FLAGS_warmup_batches < 0 ||
      FLAGS_threads < 1 || FLAGS_shards < 1) {
    return absl::InvalidArgumentError(
        "--keys, --batch, --batches, --threads and --shards must be >= 1, --warmup_batches >= 0");
  }
  if (!(FLAGS_zipf > 0) || !(FLAGS_phase_seconds > 0) || !(FLAGS_warmup_seconds >= 0) ||
      FLAGS_warmup_threads < 0) {
    return absl::InvalidArgumentError(
        "--zipf and --phase_seconds must be > 0, --warmup_seconds and --warmup_threads >= 0");
  }
  return absl::OkStatus();
}

void ApplyQuickDefaults() {
  if (!FLAGS_quick) return;
  auto is_default = [](const char* name) {
    return gflags::GetCommandLineFlagInfoOrDie(name).is_default;
  };
  if (is_default("keys")) FLAGS_keys = kQuickKeys;
  if (is_default("batches")) FLAGS_batches = kQuickBatches;
  if (is_default("warmup_batches")) FLAGS_warmup_batches = kQuickWarmupBatches;
  if (is_default("phase_seconds")) FLAGS_phase_seconds = kQuickPhaseSeconds;
  if (is_default("warmup_seconds")) FLAGS_warmup_seconds = kQuickWarmupSeconds;
}

absl::Status Run() {
  ApplyQuickDefaults();
  absl::Status status = CheckFlags();
  if (!status.ok()) return status;
  const auto start = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  Workload workload;
  status = RunBenchmark(&rows, &workload);
  if (!status.ok()) return status;
  return FinishTable(rows.size(), SecondsSince(start), FLAGS_json, RowsJson(rows, workload));
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  return granary::BenchmarkMain(
      "table_bench",
      "table_bench [--quick] [--keys=N] [--zipf=S] [--batch=B] [--batches=N] "
      "[--warmup_batches=N] [--dims=16,64] [--cache_fractions=1,0.1,0.01] [--threads=T] "
      "[--hot_key] "
      "[--dir=DIR] [--json=PATH]",
      argc, argv, granary::Run);
}
