// Writes the binary seed inputs of the fuzz targets into fuzz/corpus/<target>/ under the
// folder given as the only argument: valid messages, delta files, vector files and
// checkpoint manifests, made by the writers the system itself uses. The text seeds (configs,
// TSV lines) are written by hand. Run by hand after a format changes; the seeds are committed.
//
//   build-fuzz/fuzz/make_fuzz_seeds fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/delta_file.h"
#include "common/message.h"
#include "common/vector_file.h"
#include "scheduler/checkpoint_store.h"

namespace {

namespace fs = std::filesystem;

constexpr char kClusterId[] = "fuzz-cluster";  // fuzz/message_fuzzer.cc's
constexpr char kFrameSeparator[] = "FRM|";     // fuzz/message_fuzzer.cc's

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", status.ToString().c_str());
    std::exit(1);
  }
}

void Write(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) Check(absl::UnavailableError("cannot write " + path.string()));
}

void WriteMessages(const fs::path& dir) {
  using granary::proto::Header;
  Header control =
      granary::MakeHeader(granary::proto::HEARTBEAT, kClusterId, granary::proto::WORKER, 3);
  Write(dir / "heartbeat", control.SerializeAsString());

  const std::vector<uint64_t> keys = {1, 2, 0xffffffffffffffffull};
  const std::vector<float> values = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f, -0.25f};
  Header push = granary::MakeHeader(granary::proto::PUSH, kClusterId, granary::proto::WORKER, 0);
  push.set_request_id(17);
  push.set_table("emb");
  push.set_key_bytes(keys.size() * sizeof(uint64_t));
  push.set_value_bytes(values.size() * sizeof(float));
  Write(
      dir / "push",
      push.SerializeAsString() + kFrameSeparator +
          std::string(reinterpret_cast<const char*>(keys.data()), keys.size() * sizeof(uint64_t)) +
          kFrameSeparator +
          std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));

  Header pull = granary::MakeHeader(granary::proto::PULL, kClusterId, granary::proto::WORKER, 1);
  pull.set_table("emb");
  pull.set_key_bytes(sizeof(uint64_t));
  Write(dir / "pull",
        pull.SerializeAsString() + kFrameSeparator + std::string(8, '\x07') + kFrameSeparator);
}

void WriteDeltas(const fs::path& dir) {
  granary::proto::DeltaHeader header;
  header.set_server_rank(1);
  header.set_since_version(4);
  header.set_until_version(9);
  absl::StatusOr<std::unique_ptr<granary::DeltaWriter>> writer =
      granary::DeltaWriter::Create((dir / "two_tables").string(), header);
  Check(writer.status());
  const float row[4] = {0.5f, -1.0f, 2.0f, 0.25f};
  Check((*writer)->AddRow("emb", 4, 11, row));
  Check((*writer)->AddRow("emb", 4, 12, row));
  Check((*writer)->AddTombstone("emb", 4, 13));
  Check((*writer)->AddRow("dense", 2, 0, row));
  Check((*writer)->Finish());

  writer = granary::DeltaWriter::Create((dir / "empty").string(), header);
  Check(writer.status());
  Check((*writer)->Finish());
}

void WriteVectors(const fs::path& dir) {
  granary::proto::VectorFileHeader header;
  header.set_kind(granary::proto::VectorFileHeader::ITEM);
  header.set_dim(3);
  header.set_source("fuzz seed");
  absl::StatusOr<std::unique_ptr<granary::VectorFileWriter>> writer =
      granary::VectorFileWriter::Create((dir / "items").string(), header);
  Check(writer.status());
  const std::vector<float> vector = {0.5f, -1.0f, 2.0f};
  Check((*writer)->Add(5, vector));
  Check((*writer)->Add(6, vector));
  Check((*writer)->Finish());
}

void WriteManifests(const fs::path& dir) {
  const fs::path root = dir / "root";
  granary::CheckpointStore store(root.string());
  granary::proto::CheckpointManifest manifest;
  manifest.set_id(1);
  manifest.set_created("2026-12-07T15:00:00Z");
  manifest.set_reason("periodic");
  manifest.set_num_servers(2);
  manifest.mutable_shard_map()->set_version(3);
  granary::proto::QueueProgress* queue = manifest.add_queues();
  queue->add_finished(0);
  queue->add_finished(2);
  Check(store.Prepare(1));
  Check(store.WriteManifest(manifest));
  fs::rename(fs::path(store.DirOf(1)) / "MANIFEST", dir / "periodic");
  fs::remove_all(root);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  const fs::path corpus = argv[1];
  for (const char* target : {"message", "delta_file", "vector_file", "checkpoint_manifest"}) {
    fs::create_directories(corpus / target);
  }
  WriteMessages(corpus / "message");
  WriteDeltas(corpus / "delta_file");
  WriteVectors(corpus / "vector_file");
  WriteManifests(corpus / "checkpoint_manifest");
  return 0;
}
