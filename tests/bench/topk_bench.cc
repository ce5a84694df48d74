// topk_bench: the cost of POST /topk's exact search (TopKItems, worker/serve/item_vectors.h)
// over N exported item vectors, to decide whether an approximate index is worth adding.
//
// The item vectors are synthetic (uniform in [-1, 1], a fixed seed): exact search costs the
// same whatever the vectors hold. A query is one user vector (two-tower, DAT, ATNN) or
// --interests of them (MIND). Each N is timed over --queries searches after one warm-up, each
// with a fresh random user; the columns are the median and p99 milliseconds of one search and
// the floats scanned per microsecond.
//
// Everything runs on this thread, pinned to the CPU it started on (sched_setaffinity), so a
// figure is one core's.
//
// Usage: topk_bench [--items=1000,100000,1000000] [--dim=64] [--k=10] [--interests=1]
//                   [--queries=20]
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "tests/bench/bench_main.h"
#include "worker/serve/item_vectors.h"

DEFINE_string(items, "1000,100000,1000000", "Comma-separated item counts N searched.");
DEFINE_int32(dim, 64, "Dimension of the item and user vectors.");
DEFINE_int32(k, 10, "Items returned per search.");
DEFINE_int32(interests, 1, "User vectors per query (MIND's interests; 1 for the other models).");
DEFINE_int32(queries, 20, "Searches timed per N, after one warm-up.");

namespace granary {
namespace {

// Seed of the synthetic vectors: every run searches the same corpus.
constexpr uint32_t kSeed = 19;
constexpr double kP99 = 0.99;

double Percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  const size_t index = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1));
  return values[index];
}

std::string PinToOneCpu() {
  const int cpu = sched_getcpu();
  if (cpu < 0) return "not pinned";
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) return "not pinned";
  return absl::StrCat("pinned to cpu ", cpu);
}

absl::Status Run() {
  if (FLAGS_dim <= 0 || FLAGS_k <= 0 || FLAGS_interests <= 0 || FLAGS_queries <= 0) {
    return absl::InvalidArgumentError(
        "--dim, --k, --interests and --queries must each be positive");
  }
  std::vector<int64_t> counts;
  for (absl::string_view part : absl::StrSplit(FLAGS_items, ',')) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(part, &n) || n <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--items: \"", part, "\" is not a positive count"));
    }
    counts.push_back(n);
  }
  std::mt19937 rng(kSeed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  absl::PrintF("topk_bench: exact top-%d by dot product, dim %d, %d user vector(s), %s\n", FLAGS_k,
               FLAGS_dim, FLAGS_interests, PinToOneCpu());
  absl::PrintF("%10s %10s %10s %14s\n", "items", "p50 ms", "p99 ms", "floats/us");
  for (const int64_t n : counts) {
    VectorSet items;
    items.header.set_dim(FLAGS_dim);
    items.keys.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) items.keys[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
    items.values.resize(static_cast<size_t>(n) * static_cast<size_t>(FLAGS_dim));
    for (float& value : items.values) value = uniform(rng);
    UserVectors user;
    user.dim = FLAGS_dim;
    user.count = FLAGS_interests;
    user.values.resize(static_cast<size_t>(FLAGS_interests) * static_cast<size_t>(FLAGS_dim));
    std::vector<double> millis;
    for (int query = 0; query <= FLAGS_queries; ++query) {
      for (float& value : user.values) value = uniform(rng);
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<std::vector<proto::TopKItem>> top = TopKItems(items, user, FLAGS_k);
      const auto stop = std::chrono::steady_clock::now();
      if (!top.ok()) return top.status();
      if (top->size() != std::min<size_t>(static_cast<size_t>(n), static_cast<size_t>(FLAGS_k))) {
        return absl::InternalError(absl::StrCat("TopKItems returned ", top->size(), " items"));
      }
      if (query == 0) continue;  // the warm-up
      millis.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    const double p50 = Percentile(millis, 0.5);
    absl::PrintF("%10d %10.3f %10.3f %14.1f\n", n, p50, Percentile(millis, kP99),
                 static_cast<double>(items.values.size()) / (p50 * 1000.0));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  return granary::BenchmarkMain("topk_bench", "topk_bench [--items=...] [--dim=64] [--k=10]", argc,
                                argv, granary::Run);
}
