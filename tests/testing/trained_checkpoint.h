// What the base export and base reader tests start from: a checkpoint of one trained table, as
// a day close moves into bases/<day>/server-0, and the rows of a delta file by key.
#ifndef GRANARY_TESTS_TESTING_TRAINED_CHECKPOINT_H_
#define GRANARY_TESTS_TESTING_TRAINED_CHECKPOINT_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/delta_file.h"
#include "common/feature_key.h"
#include "common/proto/config.pb.h"
#include "gtest/gtest.h"
#include "ps/table_catalog.h"

namespace granary {

// Table "emb" (dim, Adagrad 0.1, NORMAL 0.1 initializer) whose `num_keys` rows took three
// pushes of fixed gradients.
struct TrainedCheckpoint {
  proto::ClusterConfig config;
  std::vector<uint64_t> keys;  // FeatureKey("id", "0"), ...
  std::vector<float> trained;  // keys.size() * dim: the rows' values after the pushes
  std::string path;            // the checkpoint: <root>/base/server-0
};

// Trains the table in <root>/live and checkpoints it into out->path. Use with
// ASSERT_NO_FATAL_FAILURE.
inline void WriteTrainedCheckpoint(const std::string& root, int dim, int num_keys,
                                   TrainedCheckpoint* out) {
  proto::TableConfig* table_config = out->config.add_tables();
  table_config->set_name("emb");
  table_config->set_dim(dim);
  table_config->mutable_initializer()->set_kind(proto::InitializerConfig::NORMAL);
  table_config->mutable_initializer()->set_scale(0.1f);
  table_config->mutable_optimizer()->mutable_adagrad()->set_learning_rate(0.1f);
  for (int i = 0; i < num_keys; ++i) out->keys.push_back(FeatureKey("id", std::to_string(i)));
  out->trained.assign(out->keys.size() * dim, 0);
  TableCatalogOptions options;
  options.path = root + "/live";
  absl::StatusOr<std::unique_ptr<TableCatalog>> catalog = TableCatalog::Open(out->config, options);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EmbeddingTable* table = (*catalog)->Find("emb");
  std::vector<float> grads(out->keys.size() * dim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
  for (int step = 0; step < 3; ++step) {
    auto cut = (*catalog)->LockForRequest();
    ASSERT_TRUE(table->Push(out->keys, grads.data()).ok());
  }
  {
    auto cut = (*catalog)->LockForRequest();
    ASSERT_TRUE(table->Pull(out->keys, out->trained.data(), /*read_only=*/true).ok());
  }
  std::filesystem::create_directories(root + "/base");
  out->path = root + "/base/server-0";
  const absl::Status checkpointed = (*catalog)->Checkpoint(out->path);
  ASSERT_TRUE(checkpointed.ok()) << checkpointed;
}

// Every row of table `table` in `delta_path`, by key; a block of another table fails the test.
inline std::map<uint64_t, std::vector<float>> DeltaRowsOf(const std::string& delta_path,
                                                          const std::string& table) {
  std::map<uint64_t, std::vector<float>> rows;
  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(delta_path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return rows;
  DeltaTableBlock block;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    EXPECT_EQ(block.table, table);
    const size_t dim = static_cast<size_t>(block.dim);
    for (size_t i = 0; i < block.keys.size(); ++i) {
      rows[block.keys[i]].assign(block.values.begin() + i * dim,
                                 block.values.begin() + (i + 1) * dim);
    }
  }
  return rows;
}

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_TRAINED_CHECKPOINT_H_
