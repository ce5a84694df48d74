#include "tests/testing/in_process_training.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "tests/testing/in_process_cluster.h"

namespace granary {

proto::ClusterConfig EmbAndDenseTables(float emb_init_scale,
                                       const proto::OptimizerConfig& emb_optimizer,
                                       float dense_learning_rate) {
  proto::ClusterConfig config;
  proto::TableConfig* emb = config.add_tables();
  emb->set_name("emb");
  emb->set_dim(8);
  emb->mutable_initializer()->set_kind(proto::InitializerConfig::NORMAL);
  emb->mutable_initializer()->set_scale(emb_init_scale);
  *emb->mutable_optimizer() = emb_optimizer;
  proto::TableConfig* dense = config.add_tables();
  dense->set_name("dense");
  dense->set_dim(64);
  dense->mutable_optimizer()->mutable_adam()->set_learning_rate(dense_learning_rate);
  return config;
}

proto::ClusterConfig AdamEmbAndDenseTables(float emb_init_scale, float learning_rate) {
  proto::OptimizerConfig adam;
  adam.mutable_adam()->set_learning_rate(learning_rate);
  return EmbAndDenseTables(emb_init_scale, adam, learning_rate);
}

absl::StatusOr<JobSpec> ClickJob(const std::string& dataset, const std::string& architecture,
                                 int epochs, const std::string& dir) {
  JobSpec spec;
  absl::Status status = ParseTextProto(dataset, "dataset", &spec.dataset);
  if (!status.ok()) return status;
  const std::string job = absl::StrCat(
      "model {\n  embedding_dim: 8 sparse_table: \"emb\" dense_table: \"dense\"\n", architecture,
      "\n  tasks { name: \"click\" head: BINARY label_column: \"click\" }\n}\n",
      "training { batch_size: 64 epochs: ", epochs, " seed: 3 train_files: \"train.tsv\"\n",
      "  eval_files: \"eval.tsv\" metrics_file: \"", dir, "/metrics.jsonl\"\n",
      "  barrier_timeout_seconds: 60 }\n");
  status = ParseTextProto(job, "job", &spec.job);
  if (!status.ok()) return status;
  *spec.job.mutable_dataset() = spec.dataset;
  status = ValidateJobConfig(spec.job, spec.dataset, "job", nullptr);
  if (!status.ok()) return status;
  return spec;
}

absl::StatusOr<std::vector<std::vector<EpochReport>>> TrainInProcessCluster(
    const JobSpec& spec, const proto::ClusterConfig& tables, const std::string& dir,
    int num_workers) {
  InProcessClusterOptions options;
  options.num_servers = kTrainingServers;
  options.num_workers = num_workers;
  options.config = tables;
  InProcessCluster cluster(options);
  absl::Status started = cluster.Start();
  if (!started.ok()) return started;
  std::vector<absl::Status> status(num_workers);
  std::vector<std::vector<EpochReport>> reports(num_workers);
  std::vector<std::thread> threads;
  for (int w = 0; w < num_workers; ++w) {
    threads.emplace_back([&, w] {
      TrainerOptions trainer_options;
      trainer_options.data_dir = dir;
      trainer_options.output_dir = dir;
      Trainer trainer(spec, &cluster.worker(w), &cluster.worker_client(w), trainer_options);
      status[w] = trainer.Run(&reports[w]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  cluster.Stop();
  for (const absl::Status& worker_status : status) {
    if (!worker_status.ok()) return worker_status;
  }
  return reports;
}

absl::StatusOr<std::vector<EpochReport>> TrainClickJob(const std::string& dataset,
                                                       const std::string& architecture, int epochs,
                                                       const proto::ClusterConfig& tables,
                                                       const std::string& dir) {
  absl::StatusOr<JobSpec> spec = ClickJob(dataset, architecture, epochs, dir);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::vector<std::vector<EpochReport>>> reports =
      TrainInProcessCluster(*spec, tables, dir);
  if (!reports.ok()) return reports.status();
  return std::move((*reports)[0]);
}

}  // namespace granary
