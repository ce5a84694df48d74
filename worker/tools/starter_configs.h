// The starter job and cluster configs `granary_describe` writes beside a guessed dataset
// config: defaults chosen to train well on data the project has never seen (measured on the
// synthetic stream of tests/bench/synthetic_stream.py, docs/models.md "A new dataset").
//
// The job is DUPN when the dataset has a SEQUENCE column with a CATEGORICAL step field and
// both user and item fields can be told apart (item fields: CATEGORICAL or MULTI_CATEGORICAL
// columns whose keys a step field shares, or whose name has an item word such as item,
// product, movie, ad; user fields: the other ones); shared bottom over every field otherwise.
// Every NUMERIC column enters as a numeric field; every LABEL column is a task.
//
// Thread-safe: pure functions.
#ifndef GRANARY_WORKER_TOOLS_STARTER_CONFIGS_H_
#define GRANARY_WORKER_TOOLS_STARTER_CONFIGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "common/proto/job.pb.h"
#include "worker/tools/dataset_guess.h"

namespace granary {

// The starter defaults (docs/models.md says why each was chosen).
inline constexpr uint32_t kStarterEmbeddingDim = 16;
inline constexpr uint32_t kStarterHidden = 32;      // LSTM, attention, task heads
inline constexpr uint32_t kStarterUserMlp = 64;     // DUPN's user MLP
inline constexpr uint32_t kStarterBottomMlp0 = 64;  // shared bottom's two layers
inline constexpr uint32_t kStarterBottomMlp1 = 32;
inline constexpr uint32_t kStarterBatchSize = 256;
inline constexpr uint32_t kStarterEpochs = 2;
inline constexpr float kStarterEmbeddingInitScale = 0.05f;
// Adam on both tables: see docs/models.md for the sweep that chose them. On the synthetic
// stream's validation split, the embeddings' 0.003 at the written 2 epochs was the best setting
// for purchase and within 0.001 AUC of the best for click; 0.001 needed 3 epochs to come within
// 0.01 purchase AUC of it, 0.01 was ahead after one epoch but overfit by the third.
inline constexpr float kStarterSparseLearningRate = 0.003f;
inline constexpr float kStarterDenseLearningRate = 0.001f;
inline constexpr uint32_t kStarterDenseBlock = 256;

struct StarterOptions {
  // What the job config names: the dataset config (relative to the job config's folder),
  // the train and eval file patterns (relative to the worker's --data_dir).
  std::string dataset_config = "dataset.pbtxt";
  std::string train_files = "train-*";
  std::string eval_files = "eval*";
};

struct StarterConfigs {
  proto::JobConfig job;              // passes ValidateJobConfig against guess.dataset
  proto::ClusterConfig cluster;      // passes ValidateClusterConfig
  std::vector<std::string> reasons;  // why the architecture and its fields
};

// InvalidArgument if `guess` has no task ("no label column: name them with --labels") or no
// CATEGORICAL, MULTI_CATEGORICAL or SEQUENCE column to embed.
absl::StatusOr<StarterConfigs> MakeStarterConfigs(const DatasetGuess& guess,
                                                  const StarterOptions& options);

}  // namespace granary

#endif  // GRANARY_WORKER_TOOLS_STARTER_CONFIGS_H_
