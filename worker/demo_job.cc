#include "worker/demo_job.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/feature_key.h"
#include "glog/logging.h"

namespace granary {
namespace {

float DemoGradient(int worker_rank, int round, int key_index, int d) {
  return static_cast<float>((worker_rank + 1) * (1 + (key_index + d + round) % 4));
}

const proto::TableConfig* FindTableConfig(const proto::ClusterView& view, const std::string& name) {
  for (const proto::TableConfig& table : view.config().tables()) {
    if (table.name() == name) return &table;
  }
  return nullptr;
}

}  // namespace

absl::Status RunPushPullDemo(KVWorker& worker, SchedulerClient& scheduler,
                             const DemoJobOptions& options, DemoJobResult* result) {
  const proto::TableConfig* table = FindTableConfig(scheduler.view(), options.table);
  if (table == nullptr || table->optimizer().kind_case() != proto::OptimizerConfig::kSgd) {
    return absl::FailedPreconditionError(
        absl::StrCat("demo needs an SGD table named '", options.table, "' in the cluster config"));
  }
  const int dim = static_cast<int>(table->dim());
  const float lr = table->optimizer().sgd().learning_rate();
  int num_workers = 0;
  for (const proto::NodeInfo& node : scheduler.view().nodes()) {
    num_workers += node.role() == proto::WORKER;
  }
  const uint64_t field = FieldSeed("demo_key");
  std::vector<uint64_t> keys(options.num_keys);
  for (int i = 0; i < options.num_keys; ++i) keys[i] = FeatureKey(field, std::to_string(i));

  // Everyone reads the initial rows before anyone pushes.
  std::vector<float> initial;
  absl::Status status = worker.Wait(worker.Pull(options.table, keys, &initial));
  if (status.ok()) status = scheduler.Barrier("demo-start", "workers", options.barrier_timeout);
  if (!status.ok()) return status;

  // All rounds in flight at once; a pull of shuffled, repeated keys is mixed in to exercise
  // reassembly while pushes race.
  std::vector<std::vector<float>> grads(options.rounds, std::vector<float>(keys.size() * dim));
  std::vector<int64_t> pending;
  for (int r = 0; r < options.rounds; ++r) {
    for (int i = 0; i < options.num_keys; ++i) {
      for (int d = 0; d < dim; ++d) grads[r][i * dim + d] = DemoGradient(worker.rank(), r, i, d);
    }
    pending.push_back(worker.Push(options.table, keys, grads[r]));
  }
  std::vector<uint64_t> shuffled(keys.rbegin(), keys.rend());
  shuffled.insert(shuffled.end(), keys.begin(), keys.begin() + std::min(10, options.num_keys));
  std::vector<float> shuffled_rows;
  int64_t shuffled_pull = worker.Pull(options.table, shuffled, &shuffled_rows);
  for (int64_t id : pending) {
    absl::Status push = worker.Wait(id);
    if (status.ok()) status = push;
  }
  absl::Status pull = worker.Wait(shuffled_pull);
  if (status.ok()) status = pull;
  if (status.ok()) status = scheduler.Barrier("demo-pushed", "workers", options.barrier_timeout);
  if (!status.ok()) return status;

  std::vector<float> final_rows;
  status = worker.Wait(worker.Pull(options.table, keys, &final_rows));
  if (!status.ok()) return status;
  result->keys_checked = keys.size();
  result->max_abs_error = 0;
  for (int i = 0; i < options.num_keys; ++i) {
    for (int d = 0; d < dim; ++d) {
      double sum = 0;
      for (int w = 0; w < num_workers; ++w) {
        for (int r = 0; r < options.rounds; ++r) sum += DemoGradient(w, r, i, d);
      }
      double expected = initial[i * dim + d] - lr * sum;
      double error = std::abs(final_rows[i * dim + d] - expected);
      result->max_abs_error = std::max(result->max_abs_error, error);
      if (error > 1e-5 * std::max(1.0, std::abs(expected))) {
        return absl::DataLossError(
            absl::StrFormat("table '%s' key %#018x (demo key %d) dim %d: row %.8g, expected %.8g",
                            options.table, keys[i], i, d, final_rows[i * dim + d], expected));
      }
    }
  }
  LOG(INFO) << "demo: " << options.num_keys << " keys x dim " << dim << ", " << num_workers
            << " workers x " << options.rounds << " rounds: rows match (max abs error "
            << result->max_abs_error << ")";
  return absl::OkStatus();
}

}  // namespace granary
