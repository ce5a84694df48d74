// train_bench: training throughput of a worker on MovieLens-100K, per compute thread, and the
// bytes it moves per trained sample, beside the same DUPN model in PyTorch on one core.
//
// MovieLens-100K (--movielens_dir) is converted by granary_movielens_convert into a temporary
// folder. For each --models job (configs/movielens_<model>.pbtxt) and each --threads count, a
// fresh in-process cluster (tests/testing/in_process_cluster.h: 1 server, 1 worker, real TCP
// on 127.0.0.1; tables of configs/movielens_dupn_cluster.pbtxt) trains --epochs epochs with
// the job's batch size, then evaluates on the split's held-out file after each epoch. Each run
// is repeated for each --wires setting (TableConfig.wire of every table, common/wire_codec.h):
//   fp32       today's wire                    fp16_pull  fp16 pulls, fp32 pushes
//   fp16_push  fp32 pulls, fp16 pushes         int8_push  fp32 pulls, int8 pushes
//   light      fp16 pulls, int8 pushes         light_keys light with Elias-Fano keys
// (lossy pushes with error feedback), the settings of one model and thread count run one after
// another so that their figures share the machine's load. Columns:
//   samples/s         the worker's training samples per wall-clock second, best epoch (the
//                     least disturbed by other load on the machine)
//   per thread        samples/s / threads
//   per CPU-s         samples per CPU-second of the whole process over all epochs: worker
//                     threads, reader, KVWorker I/O and the server's threads together
//   sent B, recv B    payload bytes the worker's pulls and pushes carried per sample (8 per
//                     key, or the Elias-Fano frames' measured average, printed per table after
//                     the run; 4 per float; headers excluded), see EpochReport
//   B vs fp32         (sent B + recv B) / that of the fp32 row of the same model and threads
//   click AUC         the last epoch's evaluation; --split=eval trains on train-* and
//                     evaluates on eval.tsv.gz, --split=validation trains on train-00..06 and
//                     evaluates on train-07 (where defaults are chosen, docs/experiments.md)
//   AUC vs fp32       click AUC - that of the fp32 row
//   vs PyTorch        per thread / PyTorch's samples/s on one core (torch.set_num_threads(1))
// The PyTorch row runs tests/bench/torch_dupn.py (the DUPN job's network, batch size and
// optimizers) when `python3 -c 'import torch'` works (Debian 12: apt-get install
// python3-torch); otherwise it prints "skipped: python3-torch not installed".
//
// Usage: train_bench [--models=dupn,shared_bottom,mmoe] [--threads=1,2] [--epochs=N]
//                    [--wires=fp32,light] [--split=eval|validation] [--evaluate=false]
//                    [--movielens_dir=DIR] [--torch=false] [--json=PATH]
//                    [--l2=X] [--dense_l2=X] [--dropout=X]  (the tables' l2, the heads' dropout)
//                    [--bottom_dropout=X]  (the shared bottom's / MMoE experts' dropout)
//                    [--dense_weight_decay=X]  (the dense table's AdamW decay)
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config.h"
#include "common/wire_codec.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/bench/bench_json.h"
#include "tests/bench/bench_main.h"
#include "tests/testing/in_process_cluster.h"
#include "worker/job_config.h"
#include "worker/train/evaluation.h"
#include "worker/train/trainer.h"

DEFINE_string(models, "dupn", "Comma-separated jobs configs/movielens_<model>.pbtxt to train.");
DEFINE_string(threads, "1,2", "Comma-separated compute-thread counts to time.");
DEFINE_int32(epochs, 3, "Training epochs per run; the best epoch's samples/s is reported.");
DEFINE_string(movielens_dir, GRANARY_SOURCE_DIR "/../shared/data/movielens-100k",
              "The unpacked ml-100k folder.");
DEFINE_bool(torch, true, "Also time tests/bench/torch_dupn.py when PyTorch is installed.");
DEFINE_int32(torch_epochs, 2, "Epochs of the PyTorch run; its best epoch is reported.");
DEFINE_string(wires, "fp32,light",
              "Comma-separated wire settings of every table: fp32, fp16_pull, fp16_push, "
              "int8_push, light (fp16 pulls, int8 pushes), light_keys (light with "
              "Elias-Fano keys).");
DEFINE_string(split, "eval",
              "eval: train on train-*, evaluate on eval.tsv.gz; validation: train on "
              "train-00..06, evaluate on train-07.");
DEFINE_bool(evaluate, true, "Evaluate after each epoch (the click AUC column).");
DEFINE_double(l2, 0, "TableConfig.l2 of the embedding table 'emb' (0: none, as the config).");
DEFINE_double(dense_l2, 0,
              "TableConfig.l2 of the dense table 'dense' (0: none); it holds offsets from the "
              "initial weights, so this pulls the weights toward those.");
DEFINE_double(dense_weight_decay, 0,
              "TableConfig.weight_decay of the dense table 'dense' (0: none; its optimizer must "
              "be adam, as in the MovieLens cluster config).");
DEFINE_double(dropout, 0,
              "TaskConfig.dropout of every task with hidden layers (0: none, as the job).");
DEFINE_double(bottom_dropout, 0,
              "SharedBottomConfig.dropout or MmoeConfig.dropout of the job (0: none, as the "
              "job).");
DEFINE_string(json, "", "If set, the result rows are also written here as a JSON array.");

namespace granary {
namespace {

struct Row {
  std::string model;
  std::string wire = "fp32";
  int threads = 1;
  int64_t samples = 0;  // per epoch
  double samples_per_second = 0;
  double per_thread = 0;
  double per_cpu_second = 0;
  double bytes_sent_per_sample = 0;
  double bytes_received_per_sample = 0;
  double vs_torch = 0;
  std::optional<double> click_auc;  // the last epoch's evaluation
  double bytes_vs_fp32 = 0;         // 0: no fp32 row to compare with
  std::optional<double> auc_vs_fp32;
};

struct WireSetting {
  std::string name;
  proto::ValueEncoding pull_values;
  proto::ValueEncoding push_values;
  proto::KeyEncoding keys = proto::KEYS_RAW;
};

absl::StatusOr<std::vector<WireSetting>> ParseWires(const std::string& text) {
  const std::vector<WireSetting> known = {
      {"fp32", proto::VALUES_FP32, proto::VALUES_FP32},
      {"fp16_pull", proto::VALUES_FP16, proto::VALUES_FP32},
      {"fp16_push", proto::VALUES_FP32, proto::VALUES_FP16},
      {"int8_push", proto::VALUES_FP32, proto::VALUES_INT8},
      {"light", proto::VALUES_FP16, proto::VALUES_INT8},
      {"light_keys", proto::VALUES_FP16, proto::VALUES_INT8, proto::KEYS_ELIAS_FANO}};
  std::vector<WireSetting> wires;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    auto it = std::find_if(known.begin(), known.end(),
                           [&](const WireSetting& wire) { return wire.name == part; });
    if (it == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--wires: unknown setting '", part, "'"));
    }
    wires.push_back(*it);
  }
  if (wires.empty()) return absl::InvalidArgumentError("--wires is empty");
  return wires;
}

double CpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

absl::StatusOr<std::vector<int>> ParseCounts(const std::string& text) {
  std::vector<int> counts;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int count = 0;
    if (!absl::SimpleAtoi(part, &count) || count < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--threads: bad count '", part, "'"));
    }
    counts.push_back(count);
  }
  if (counts.empty()) return absl::InvalidArgumentError("--threads is empty");
  return counts;
}

// Output of `command` (stdout), or an error naming it if it could not run or failed.
absl::StatusOr<std::string> RunCommand(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::UnavailableError(absl::StrCat("cannot run: ", command));
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(absl::StrCat("'", command, "' exited with status ", status));
  }
  return output;
}

// A python3 that can import torch, or nullopt.
std::optional<std::string> FindTorchPython() {
  // The Debian package installs into the system interpreter, which a user's PATH (pyenv,
  // virtualenv) may hide.
  for (const char* python : {"python3", "/usr/bin/python3"}) {
    if (std::system(absl::StrCat(python, " -c 'import torch' > /dev/null 2>&1").c_str()) == 0) {
      return std::string(python);
    }
  }
  return std::nullopt;
}

absl::StatusOr<Row> TrainOnce(const std::string& model, int threads, const std::string& data_dir,
                              const WireSetting& wire, proto::ClusterConfig cluster_config) {
  for (proto::TableConfig& table : *cluster_config.mutable_tables()) {
    if (FLAGS_l2 > 0 && table.name() == "emb") table.set_l2(static_cast<float>(FLAGS_l2));
    if (FLAGS_dense_l2 > 0 && table.name() == "dense") {
      table.set_l2(static_cast<float>(FLAGS_dense_l2));
    }
    if (FLAGS_dense_weight_decay > 0 && table.name() == "dense") {
      table.set_weight_decay(static_cast<float>(FLAGS_dense_weight_decay));
    }
    table.mutable_wire()->set_pull_values(wire.pull_values);
    table.mutable_wire()->set_push_values(wire.push_values);
    table.mutable_wire()->set_keys(wire.keys);
  }
  absl::StatusOr<JobSpec> spec =
      LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/movielens_", model, ".pbtxt"));
  if (!spec.ok()) return spec.status();
  for (proto::TaskConfig& task : *spec->job.mutable_model()->mutable_tasks()) {
    if (!task.hidden_sizes().empty()) task.set_dropout(static_cast<float>(FLAGS_dropout));
  }
  if (spec->job.model().has_shared_bottom()) {
    spec->job.mutable_model()->mutable_shared_bottom()->set_dropout(
        static_cast<float>(FLAGS_bottom_dropout));
  }
  if (spec->job.model().has_mmoe()) {
    spec->job.mutable_model()->mutable_mmoe()->set_dropout(
        static_cast<float>(FLAGS_bottom_dropout));
  }
  proto::TrainingConfig* training = spec->job.mutable_training();
  training->set_epochs(FLAGS_epochs);
  training->clear_eval_files();
  if (FLAGS_split == "validation") {
    training->clear_train_files();
    training->add_train_files("train-0[0-6].tsv.gz");
    if (FLAGS_evaluate) training->add_eval_files("train-07.tsv.gz");
  } else if (FLAGS_evaluate) {
    training->add_eval_files("eval.tsv.gz");
  }
  training->set_metrics_file(
      absl::StrCat("out-", model, "-", wire.name, "-", threads, "/metrics.jsonl"));
  training->set_progress_interval_seconds(3600);

  InProcessClusterOptions options;
  options.num_servers = 1;
  options.num_workers = 1;
  options.config = cluster_config;
  // The key frames as sent (Elias-Fano) beside what delta varints of the same sorted unique keys
  // would take: the first key's varint, then each gap's.
  struct KeyTally {
    uint64_t frames = 0;
    uint64_t keys = 0;
    uint64_t elias_fano_bytes = 0;
    uint64_t varint_bytes = 0;
  };
  std::mutex key_mutex;
  std::map<std::string, KeyTally> key_tally;
  if (wire.keys != proto::KEYS_RAW) {
    options.on_encoded_keys = [&](const std::string& table, absl::Span<const uint64_t> keys) {
      constexpr int kVarintPayloadBits = 7;
      uint64_t varint = 0;
      uint64_t previous = 0;
      for (uint64_t key : keys) {
        const uint64_t delta = key - previous;
        const int bits = delta == 0 ? 1 : 64 - __builtin_clzll(delta);
        varint += (bits + kVarintPayloadBits - 1) / kVarintPayloadBits;
        previous = key;
      }
      std::lock_guard<std::mutex> lock(key_mutex);
      KeyTally& tally = key_tally[table];
      ++tally.frames;
      tally.keys += keys.size();
      // A part where Elias-Fano would not be smaller goes raw (KVWorker::Submit).
      tally.elias_fano_bytes += std::min<uint64_t>(
          EncodedKeyBytes(proto::KEYS_ELIAS_FANO, keys.size()), keys.size() * sizeof(uint64_t));
      tally.varint_bytes += varint;
    };
  }
  InProcessCluster cluster(options);
  absl::Status status = cluster.Start();
  if (!status.ok()) return status;
  TrainerOptions trainer_options;
  trainer_options.data_dir = data_dir;
  trainer_options.output_dir = data_dir;
  trainer_options.threads = threads;
  Trainer trainer(*spec, &cluster.worker(0), &cluster.worker_client(0), trainer_options);
  std::vector<EpochReport> reports;
  const double cpu_start = CpuSeconds();
  const absl::Time start = absl::Now();
  status = trainer.Run(&reports);
  const double cpu = CpuSeconds() - cpu_start;
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  for (const auto& [table, tally] : key_tally) {
    const double keys = static_cast<double>(std::max<uint64_t>(tally.keys, 1));
    absl::PrintF(
        "  %s, wire %s: table '%s' %d key frames of %.0f keys on average: Elias-Fano %.3f B/key "
        "(%.3f as counted by the worker), delta varints would take %.3f B/key\n",
        model, wire.name, table, tally.frames, keys / std::max<uint64_t>(tally.frames, 1),
        tally.elias_fano_bytes / keys, cluster.worker(0).KeyBytesPerKey(table),
        tally.varint_bytes / keys);
  }
  cluster.Stop();
  if (!status.ok()) return status;

  Row row;
  row.model = model;
  row.wire = wire.name;
  row.threads = threads;
  int64_t total_samples = 0;
  for (size_t e = 0; e < reports.size(); ++e) {
    const EpochReport& report = reports[e];
    std::string aucs;
    for (const TaskMetrics& task : report.eval) {
      if (task.task == "click" && task.auc.has_value()) row.click_auc = task.auc;
      if (task.auc.has_value()) absl::StrAppendFormat(&aucs, " %s AUC %.4f", task.task, *task.auc);
    }
    // Per epoch, to see a model overfit and regularization act (docs/models.md).
    if (!aucs.empty()) absl::PrintF("  %s, wire %s: epoch %d:%s\n", model, wire.name, e + 1, aucs);
    total_samples += report.train_samples;
    if (report.samples_per_second > row.samples_per_second) {
      row.samples_per_second = report.samples_per_second;
      row.samples = report.train_samples;
      row.bytes_sent_per_sample =
          static_cast<double>(report.bytes_sent) / static_cast<double>(report.train_samples);
      row.bytes_received_per_sample =
          static_cast<double>(report.bytes_received) / static_cast<double>(report.train_samples);
    }
  }
  row.per_thread = row.samples_per_second / threads;
  row.per_cpu_second = cpu > 0 ? static_cast<double>(total_samples) / cpu : 0;
  absl::PrintF("  %s, wire %s, threads=%d: %d epochs in %.1f s\n", model, wire.name, threads,
               reports.size(), wall);
  return row;
}

// Runs torch_dupn.py on the converted data: its best epoch's samples/s and eval click AUC.
absl::StatusOr<Row> TrainTorch(const std::string& python, const std::string& data_dir,
                               int batch_size, double* click_auc) {
  absl::StatusOr<std::string> output = RunCommand(absl::StrCat(
      python, " ", GRANARY_SOURCE_DIR, "/tests/bench/torch_dupn.py --data_dir=", data_dir,
      " --batch_size=", batch_size, " --epochs=", FLAGS_torch_epochs, " --threads=1"));
  if (!output.ok()) return output.status();
  google::protobuf::Struct result;
  const std::string last_line(absl::StripAsciiWhitespace(*output));
  if (!google::protobuf::util::JsonStringToMessage(last_line, &result).ok() ||
      !result.fields().contains("best_samples_per_second") ||
      !result.fields().contains("click_auc")) {
    return absl::InternalError(absl::StrCat("torch_dupn.py printed no figures: ", *output));
  }
  Row row;
  row.model = "dupn (PyTorch 1 core)";
  row.samples_per_second = result.fields().at("best_samples_per_second").number_value();
  *click_auc = result.fields().at("click_auc").number_value();
  row.per_thread = row.samples_per_second;
  return row;
}

absl::Status Run() {
  if (FLAGS_epochs < 1 || FLAGS_torch_epochs < 1) {
    return absl::InvalidArgumentError("--epochs and --torch_epochs must be >= 1");
  }
  absl::StatusOr<std::vector<int>> thread_counts = ParseCounts(FLAGS_threads);
  if (!thread_counts.ok()) return thread_counts.status();
  absl::StatusOr<std::vector<WireSetting>> wires = ParseWires(FLAGS_wires);
  if (!wires.ok()) return wires.status();
  if (FLAGS_split != "eval" && FLAGS_split != "validation") {
    return absl::InvalidArgumentError("--split must be eval or validation");
  }
  absl::StatusOr<proto::ClusterConfig> cluster_config =
      LoadClusterConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/movielens_dupn_cluster.pbtxt"));
  if (!cluster_config.ok()) return cluster_config.status();

  const std::string data_dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("train_bench-", getpid())).string();
  std::filesystem::create_directories(data_dir);
  absl::StatusOr<std::string> converted = RunCommand(absl::StrCat(
      GRANARY_BINARY_DIR, "/granary_movielens_convert --input_dir=", FLAGS_movielens_dir,
      " --output_dir=", data_dir, " 2>&1"));
  if (!converted.ok()) {
    std::filesystem::remove_all(data_dir);
    return converted.status();
  }

  std::vector<Row> rows;
  absl::Status status;
  for (absl::string_view model : absl::StrSplit(FLAGS_models, ',', absl::SkipEmpty())) {
    for (int threads : *thread_counts) {
      std::optional<Row> fp32;
      for (const WireSetting& wire : *wires) {
        absl::StatusOr<Row> row =
            TrainOnce(std::string(model), threads, data_dir, wire, *cluster_config);
        if (!row.ok()) {
          status = row.status();
          break;
        }
        if (wire.name == "fp32") fp32 = *row;
        if (fp32.has_value()) {
          const double fp32_bytes = fp32->bytes_sent_per_sample + fp32->bytes_received_per_sample;
          if (fp32_bytes > 0) {
            row->bytes_vs_fp32 =
                (row->bytes_sent_per_sample + row->bytes_received_per_sample) / fp32_bytes;
          }
          if (fp32->click_auc.has_value() && row->click_auc.has_value()) {
            row->auc_vs_fp32 = *row->click_auc - *fp32->click_auc;
          }
        }
        rows.push_back(*row);
      }
      if (!status.ok()) break;
    }
    if (!status.ok()) break;
  }

  std::optional<Row> torch;
  double torch_auc = 0;
  std::string torch_note;
  if (status.ok() && FLAGS_torch) {
    std::optional<std::string> python = FindTorchPython();
    if (!python.has_value()) {
      torch_note = "skipped: python3-torch not installed";
    } else {
      absl::StatusOr<JobSpec> spec =
          LoadJobConfig(absl::StrCat(GRANARY_SOURCE_DIR, "/configs/movielens_dupn.pbtxt"));
      if (!spec.ok()) return spec.status();
      absl::PrintF("  dupn in PyTorch (%s), threads=1: %d epochs...\n", *python,
                   FLAGS_torch_epochs);
      absl::StatusOr<Row> row = TrainTorch(
          *python, data_dir, static_cast<int>(spec->job.training().batch_size()), &torch_auc);
      if (row.ok()) {
        torch = *row;
        torch_note = absl::StrFormat("PyTorch eval click AUC after %d epochs: %.3f",
                                     FLAGS_torch_epochs, torch_auc);
      } else {
        torch_note = absl::StrCat("PyTorch run failed: ", row.status().message());
      }
    }
  }
  std::filesystem::remove_all(data_dir);
  if (!status.ok()) return status;

  absl::PrintF(
      "\n| model | wire | threads | samples/s | per thread | per CPU-s | sent B | recv B | "
      "B vs fp32 | click AUC (%s) | AUC vs fp32 | vs PyTorch |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
      FLAGS_split);
  std::vector<std::string> json;
  for (Row& row : rows) {
    if (torch.has_value() && row.model == "dupn" && row.wire == "fp32") {
      row.vs_torch = row.per_thread / torch->samples_per_second;
    }
    absl::PrintF("| %s | %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %s | %s | %s |\n",
                 row.model, row.wire, row.threads, row.samples_per_second, row.per_thread,
                 row.per_cpu_second, row.bytes_sent_per_sample, row.bytes_received_per_sample,
                 row.bytes_vs_fp32 > 0 ? absl::StrFormat("%.3f", row.bytes_vs_fp32) : "-",
                 row.click_auc.has_value() ? absl::StrFormat("%.4f", *row.click_auc) : "-",
                 row.auc_vs_fp32.has_value() ? absl::StrFormat("%+.4f", *row.auc_vs_fp32) : "-",
                 row.vs_torch > 0 ? absl::StrFormat("%.1fx", row.vs_torch) : "-");
    json.push_back(absl::StrFormat(
        "{\"model\": \"%s\", \"wire\": \"%s\", \"threads\": %d, \"samples_per_second\": %s, "
        "\"samples_per_second_per_thread\": %s, \"samples_per_cpu_second\": %s, "
        "\"bytes_sent_per_sample\": %s, \"bytes_received_per_sample\": %s, "
        "\"vs_pytorch_per_core\": %s, \"click_auc\": %s, \"bytes_vs_fp32\": %s}",
        row.model, row.wire, row.threads, JsonNumberOrNull(row.samples_per_second),
        JsonNumberOrNull(row.per_thread), JsonNumberOrNull(row.per_cpu_second),
        JsonNumberOrNull(row.bytes_sent_per_sample),
        JsonNumberOrNull(row.bytes_received_per_sample), JsonNumberOrNull(row.vs_torch),
        JsonNumberOrNull(row.click_auc.value_or(std::nan(""))),
        JsonNumberOrNull(row.bytes_vs_fp32)));
  }
  if (torch.has_value()) {
    absl::PrintF("| %s | fp32 | 1 | %.0f | %.0f | - | - | - | - | %.4f | - | 1.0x |\n",
                 torch->model, torch->samples_per_second, torch->per_thread, torch_auc);
    json.push_back(
        absl::StrFormat("{\"model\": \"dupn-pytorch\", \"threads\": 1, \"samples_per_second\": %s, "
                        "\"click_auc\": %s}",
                        JsonNumberOrNull(torch->samples_per_second), JsonNumberOrNull(torch_auc)));
  }
  if (!torch_note.empty()) absl::PrintF("\n%s\n", torch_note);
  if (!FLAGS_json.empty()) return WriteJsonArray(FLAGS_json, json);
  return absl::OkStatus();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  return granary::BenchmarkMain(
      "train_bench",
      "train_bench [--models=dupn,shared_bottom,mmoe] [--threads=1,2] [--epochs=N] "
      "[--wires=fp32,light] [--split=eval|validation] [--evaluate=false] "
      "[--movielens_dir=DIR] [--torch=false] [--json=PATH]",
      argc, argv, granary::Run);
}
