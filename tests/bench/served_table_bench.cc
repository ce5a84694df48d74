// served_table_bench: the cost per row of a served table's lookups (ServedTable::Read, as
// granary_serve scores a request) with the tables in memory against read in place through
// RocksDB (granary_serve --tables=memory / rocksdb, common/model_bundle.h).
//
// One server's base of --rows trained rows (dim --dim, Adagrad) is written as daily.sh leaves a
// closed day (bases/<day>/server-0 checkpointed by TableCatalog, its MANIFEST, its delta and its
// close report) in a fresh folder under --dir, removed at the end. Both modes open it through
// ModelBundle. Batches of --batch distinct keys drawn uniformly from the rows (every key has a
// row) are generated before any timing; the modes then read all --batches batches in turns,
// --rounds times. The base's files sit in the OS page cache after it was written, so the
// RocksDB mode's figure is a warm read (block cache of --block_cache_mb); a base larger than
// the page cache adds a disk read per miss. Rows read are checked equal between the modes.
//
// Columns: round, mode, ns/row (wall clock of the round's reads / rows read).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "common/model_bundle.h"
#include "common/proto/message.pb.h"
#include "common/proto/serve.pb.h"
#include "common/shard_map.h"
#include "gflags/gflags.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "ps/base_export.h"
#include "ps/base_reader.h"
#include "ps/table_catalog.h"
#include "tests/bench/bench_main.h"

DEFINE_int32(rows, 200000, "Rows of the base.");
DEFINE_int32(dim, 16, "Dim of the table's rows.");
DEFINE_int32(batch, 100, "Distinct keys per lookup batch (a request's keys).");
DEFINE_int32(batches, 2000, "Batches read per mode per round.");
DEFINE_int32(rounds, 3, "Rounds, each reading every batch in each mode in turn.");
DEFINE_uint64(block_cache_mb, granary::kDefaultBaseBlockCacheBytes >> 20,
              "RocksDB mode: block cache of the base, in MiB.");
DEFINE_string(dir, "", "Where the model folder is written; empty: the system's temp folder.");

namespace granary {
namespace {

constexpr char kDay[] = "20260101";
constexpr uint64_t kManifestId = 1;
constexpr int kPushBatch = 10000;  // keys per push while the base is trained
constexpr uint32_t kSeed = 1;

proto::ClusterConfig OneTable() {
  proto::ClusterConfig config;
  proto::TableConfig* table = config.add_tables();
  table->set_name("emb");
  table->set_dim(static_cast<uint32_t>(FLAGS_dim));
  table->mutable_initializer()->set_kind(proto::InitializerConfig::NORMAL);
  table->mutable_initializer()->set_scale(0.1f);
  table->mutable_optimizer()->mutable_adagrad()->set_learning_rate(0.1f);
  return config;
}

// A closed day with one server's base of `keys`, in <root>/model.
absl::Status WriteModel(const proto::ClusterConfig& config, const std::string& root,
                        const std::vector<uint64_t>& keys) {
  namespace fs = std::filesystem;
  const std::string model = root + "/model";
  const std::string base = absl::StrCat(model, "/bases/", kDay);
  const std::string delta = absl::StrCat(model, "/deltas/", kDay, "/server-0.delta");
  fs::create_directories(base);
  fs::create_directories(fs::path(delta).parent_path());
  fs::create_directories(model + "/reports");
  TableCatalogOptions options;
  options.path = root + "/live";
  absl::StatusOr<std::unique_ptr<TableCatalog>> catalog = TableCatalog::Open(config, options);
  if (!catalog.ok()) return catalog.status();
  EmbeddingTable* table = (*catalog)->Find("emb");
  std::vector<float> grads(size_t{kPushBatch} * FLAGS_dim, 0.01f);
  for (size_t begin = 0; begin < keys.size(); begin += kPushBatch) {
    const size_t end = std::min(keys.size(), begin + kPushBatch);
    std::vector<uint64_t> batch(keys.begin() + begin, keys.begin() + end);
    std::sort(batch.begin(), batch.end());
    auto cut = (*catalog)->LockForRequest();
    absl::Status pushed = table->Push(batch, grads.data());
    if (!pushed.ok()) return pushed;
  }
  absl::Status status = (*catalog)->Checkpoint(base + "/server-0");
  if (!status.ok()) return status;
  absl::StatusOr<DeltaSummary> exported = (*catalog)->ExportDelta(0, delta, 0);
  if (!exported.ok()) return exported.status();

  proto::CheckpointManifest manifest;
  manifest.set_id(kManifestId);
  manifest.set_num_servers(1);
  *manifest.mutable_shard_map() = ShardMap::EvenSplit(1, 1).ToProto();
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  std::ofstream(base + "/MANIFEST") << text;
  proto::CloseReport report;
  report.set_day(kDay);
  report.set_base_manifest_id(kManifestId);
  proto::CloseReportFile* file = report.mutable_delta()->add_files();
  file->set_path(delta);
  file->set_bytes(fs::file_size(delta));
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(report, &json).ok()) {
    return absl::InternalError("cannot print the close report");
  }
  std::ofstream(absl::StrCat(model, "/reports/", kDay, ".close.json")) << json;
  return absl::OkStatus();
}

absl::Status Run() {
  if (FLAGS_rows < FLAGS_batch || FLAGS_batch < 1 || FLAGS_batches < 1 || FLAGS_rounds < 1 ||
      FLAGS_dim < 1 || FLAGS_block_cache_mb < 1) {
    return absl::InvalidArgumentError(
        "--rows >= --batch >= 1, --batches, --rounds, --dim, --block_cache_mb >= 1");
  }
  const std::string parent =
      FLAGS_dir.empty() ? std::filesystem::temp_directory_path().string() : FLAGS_dir;
  const std::string root = absl::StrCat(parent, "/served-table-bench-", getpid());
  const proto::ClusterConfig config = OneTable();
  std::vector<uint64_t> keys;
  for (int i = 0; i < FLAGS_rows; ++i) keys.push_back(FeatureKey("id", std::to_string(i)));
  absl::Status status = WriteModel(config, root, keys);

  std::map<ServedTables, std::unique_ptr<ModelBundle>> bundles;
  for (ServedTables tables : {ServedTables::kMemory, ServedTables::kRocksDb}) {
    if (!status.ok()) break;
    ModelBundleOptions options;
    options.model_dir = root + "/model";
    options.tables = tables;
    options.scratch_dir = root + "/scratch";
    options.export_base_shard = [&](const std::string& shard_dir, int rank,
                                    const std::string& delta_path) {
      return ExportBaseShard(config, shard_dir, rank, root + "/copy", delta_path);
    };
    options.open_base_shard = [&](const std::string& shard_dir, int) {
      return OpenBaseReader(config, shard_dir, size_t{FLAGS_block_cache_mb} << 20);
    };
    absl::StatusOr<std::unique_ptr<ModelBundle>> bundle = ModelBundle::Open(options);
    status = bundle.status();
    if (status.ok()) bundles[tables] = *std::move(bundle);
  }

  std::mt19937_64 random(kSeed);
  std::vector<std::vector<uint64_t>> batches(static_cast<size_t>(FLAGS_batches));
  for (std::vector<uint64_t>& batch : batches) {
    std::sample(keys.begin(), keys.end(), std::back_inserter(batch), FLAGS_batch, random);
    std::shuffle(batch.begin(), batch.end(), random);
  }
  const size_t dim = static_cast<size_t>(FLAGS_dim);
  std::map<ServedTables, std::vector<float>> rows;
  std::map<ServedTables, std::vector<double>> ns_per_row;
  std::printf("%-6s %-8s %10s\n", "round", "mode", "ns/row");
  for (int round = 0; round < FLAGS_rounds && status.ok(); ++round) {
    for (auto& [tables, bundle] : bundles) {
      const ServedTable* table = bundle->Current()->table("emb");
      std::vector<float>& out = rows[tables];
      out.assign(batches.size() * FLAGS_batch * dim, 0);
      const auto start = std::chrono::steady_clock::now();
      for (size_t b = 0; b < batches.size() && status.ok(); ++b) {
        status = table->Read(batches[b], out.data() + b * FLAGS_batch * dim);
      }
      const double ns =
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
              .count();
      ns_per_row[tables].push_back(ns / static_cast<double>(batches.size() * FLAGS_batch));
      std::printf("%-6d %-8s %10.0f\n", round,
                  tables == ServedTables::kMemory ? "memory" : "rocksdb",
                  ns_per_row[tables].back());
    }
    if (status.ok() && rows[ServedTables::kMemory] != rows[ServedTables::kRocksDb]) {
      status = absl::InternalError("the modes read different rows");
    }
  }
  if (status.ok()) {
    std::vector<double> ratios;
    for (int r = 0; r < FLAGS_rounds; ++r) {
      ratios.push_back(ns_per_row[ServedTables::kRocksDb][r] /
                       ns_per_row[ServedTables::kMemory][r]);
    }
    std::printf("rocksdb / memory per round: %.1fx .. %.1fx (%d rows of dim %d, batches of %d)\n",
                *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end()), FLAGS_rows, FLAGS_dim,
                FLAGS_batch);
  }
  bundles.clear();
  std::error_code ignored;
  std::filesystem::remove_all(root, ignored);
  return status;
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  return granary::BenchmarkMain("served_table_bench",
                                "served_table_bench [--rows=N] [--dim=D] [--batch=B] "
                                "[--batches=N] [--rounds=R] [--block_cache_mb=M] [--dir=DIR]",
                                argc, argv, granary::Run);
}
