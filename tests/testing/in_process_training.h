// What the end-to-end training tests on synthetic data (tests/cluster/*_train_test.cc) share:
// their two tables, a one-task click job, and training a job by Trainers against an
// InProcessCluster (real TCP on 127.0.0.1).
#ifndef GRANARY_TESTS_TESTING_IN_PROCESS_TRAINING_H_
#define GRANARY_TESTS_TESTING_IN_PROCESS_TRAINING_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/config.pb.h"
#include "worker/job_config.h"
#include "worker/train/trainer.h"

namespace granary {

// The servers every TrainInProcessCluster cluster has.
inline constexpr int kTrainingServers = 2;

// Table "emb" (dim 8, rows drawn from N(0, emb_init_scale), `emb_optimizer`) and table "dense"
// (dim 64, Adam at dense_learning_rate).
proto::ClusterConfig EmbAndDenseTables(float emb_init_scale,
                                       const proto::OptimizerConfig& emb_optimizer,
                                       float dense_learning_rate);

// EmbAndDenseTables with Adam at `learning_rate` on the rows too.
proto::ClusterConfig AdamEmbAndDenseTables(float emb_init_scale, float learning_rate);

// A validated job over `dataset` (Protobuf text): `architecture` (a ModelConfig's architecture
// text) with embedding_dim 8 on tables "emb" and "dense" and one BINARY task "click" on label
// column "click"; `epochs` epochs of batches of 64 (seed 3) on train.tsv, evaluated on
// eval.tsv, metrics to <dir>/metrics.jsonl.
absl::StatusOr<JobSpec> ClickJob(const std::string& dataset, const std::string& architecture,
                                 int epochs, const std::string& dir);

// Trains `spec` by num_workers Trainers (a thread each; data and output folder `dir`) against
// a fresh InProcessCluster of kTrainingServers servers holding `tables`, then stops the
// cluster. Returns every worker's epoch reports, or the cluster's or the first worker's error.
absl::StatusOr<std::vector<std::vector<EpochReport>>> TrainInProcessCluster(
    const JobSpec& spec, const proto::ClusterConfig& tables, const std::string& dir,
    int num_workers = 1);

// ClickJob(dataset, architecture, epochs, dir) trained by one worker (TrainInProcessCluster
// holding `tables`): that worker's epoch reports, or the first error.
absl::StatusOr<std::vector<EpochReport>> TrainClickJob(const std::string& dataset,
                                                       const std::string& architecture, int epochs,
                                                       const proto::ClusterConfig& tables,
                                                       const std::string& dir);

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_IN_PROCESS_TRAINING_H_
