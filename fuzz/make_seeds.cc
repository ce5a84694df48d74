// Writes the binary seed inputs of the fuzz targets into fuzz/corpus/<target>/ under the
// folder given as the only argument: valid messages, server requests (valid and refused),
// delta files, vector files and checkpoint manifests, made by the writers the system itself
// uses. The text seeds (configs, TSV lines) are written by hand. Run by hand after a format
// changes; the seeds are committed.
//
//   build-fuzz/fuzz/make_fuzz_seeds fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/delta_file.h"
#include "common/message.h"
#include "common/vector_file.h"
#include "common/wire_codec.h"
#include "fuzz/frames.h"
#include "scheduler/checkpoint_store.h"

namespace {

namespace fs = std::filesystem;

using granary::fuzz::JoinFrames;
using granary::fuzz::kClusterId;

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

// The bytes of `elements`, as a frame carries them.
template <typename T>
std::string Bytes(const std::vector<T>& elements) {
  return std::string(reinterpret_cast<const char*>(elements.data()), elements.size() * sizeof(T));
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
  Write(dir / "push", JoinFrames({push.SerializeAsString(), Bytes(keys), Bytes(values)}));

  Header pull = granary::MakeHeader(granary::proto::PULL, kClusterId, granary::proto::WORKER, 1);
  pull.set_table("emb");
  pull.set_key_bytes(sizeof(uint64_t));
  Write(dir / "pull", JoinFrames({pull.SerializeAsString(), std::string(8, '\x07'), ""}));
}

// Requests to fuzz/server_request_fuzzer.cc's server: rank 0 of shard-map version 1, owning
// [0, 2^62) and [2^63, 2^63 + 2^62], with table "emb" of dim 4 among others, at most 256 keys
// and 4096 bytes per request.
void WriteServerRequests(const fs::path& dir) {
  using granary::proto::Header;
  // `num_keys` keys from 1 up, `num_values` floats; header sizes from the frames.
  auto request = [](granary::proto::Command command, const std::string& table, size_t num_keys,
                    size_t num_values) {
    Header header = granary::MakeHeader(command, kClusterId, granary::proto::WORKER, 2);
    header.set_request_id(41);
    header.set_table(table);
    header.set_shard_map_version(1);
    std::vector<uint64_t> keys(num_keys);
    for (size_t i = 0; i < num_keys; ++i) keys[i] = i + 1;
    const std::vector<float> values(num_values, 0.25f);
    header.set_key_bytes(keys.size() * sizeof(uint64_t));
    header.set_value_bytes(values.size() * sizeof(float));
    return std::vector<std::string>{header.SerializeAsString(), Bytes(keys), Bytes(values)};
  };
  Write(dir / "pull", JoinFrames(request(granary::proto::PULL, "emb", 3, 0)));
  Write(dir / "push", JoinFrames(request(granary::proto::PUSH, "emb", 3, 12)));
  std::vector<std::string> read_only = request(granary::proto::PULL, "emb", 2, 0);
  Header header;
  header.ParseFromString(read_only[0]);
  header.set_read_only(true);
  read_only[0] = header.SerializeAsString();
  Write(dir / "pull_read_only", JoinFrames(read_only));
  // Over the key limit (257 keys of dim 1) and the byte limit (171 keys of dim 4).
  Write(dir / "over_key_limit", JoinFrames(request(granary::proto::PULL, "one", 257, 0)));
  Write(dir / "over_byte_limit", JoinFrames(request(granary::proto::PUSH, "emb", 171, 684)));
  Write(dir / "huge_dim", JoinFrames(request(granary::proto::PULL, "wide", 1, 0)));
  // Lying sizes: a push one row short, and a pull that carries values.
  Write(dir / "push_short", JoinFrames(request(granary::proto::PUSH, "emb", 3, 8)));
  Write(dir / "pull_with_values", JoinFrames(request(granary::proto::PULL, "emb", 1, 4)));
  Write(dir / "unknown_table", JoinFrames(request(granary::proto::PULL, "nope", 1, 0)));
  // A key in the gap between the server's ranges.
  std::vector<std::string> outside = request(granary::proto::PULL, "emb", 1, 0);
  outside[1] = Bytes(std::vector<uint64_t>{1, uint64_t{1} << 62, uint64_t{1} << 63});
  header.ParseFromString(outside[0]);
  header.set_key_bytes(outside[1].size());
  outside[0] = header.SerializeAsString();
  Write(dir / "key_outside_ranges", JoinFrames(outside));
  // Table "light" on the light wire: an int8 push of 3 rows (4 + 4 bytes each) and an fp16 pull.
  std::vector<std::string> light = request(granary::proto::PUSH, "light", 3, 0);
  light[2] =
      Bytes(granary::EncodeValues(granary::proto::VALUES_INT8, std::vector<float>(12, 0.25f), 4));
  header.ParseFromString(light[0]);
  header.set_value_encoding(granary::proto::VALUES_INT8);
  header.set_value_bytes(light[2].size());
  light[0] = header.SerializeAsString();
  Write(dir / "light_push", JoinFrames(light));
  light = request(granary::proto::PULL, "light", 3, 0);
  header.ParseFromString(light[0]);
  header.set_value_encoding(granary::proto::VALUES_FP16);
  light[0] = header.SerializeAsString();
  Write(dir / "light_pull", JoinFrames(light));
  // Table "efkeys": a push of 3 keys (1, 2, 3) as Elias-Fano, and one whose header claims 4.
  std::vector<std::string> efkeys = request(granary::proto::PUSH, "efkeys", 3, 12);
  const std::vector<uint64_t> words =
      granary::EncodeKeys(granary::proto::KEYS_ELIAS_FANO, {1, 2, 3});
  efkeys[1] = Bytes(words);
  header.ParseFromString(efkeys[0]);
  header.set_key_encoding(granary::proto::KEYS_ELIAS_FANO);
  header.set_key_count(3);
  header.set_key_bytes(efkeys[1].size());
  efkeys[0] = header.SerializeAsString();
  Write(dir / "efkeys_push", JoinFrames(efkeys));
  header.set_key_count(4);
  efkeys[0] = header.SerializeAsString();
  Write(dir / "efkeys_lying_count", JoinFrames(efkeys));
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

// The prefix of a wire_codec input (fuzz/wire_codec_fuzzer.cc): encoding, dim, rows; then the
// frame as a peer would send it.
void WriteWireFrames(const fs::path& dir) {
  const std::vector<float> values = {0.5f, -1.0f, 2.0f, 0.0f, 3e-3f, -0.25f, 1e-8f, 7.0f};
  for (auto encoding :
       {granary::proto::VALUES_FP32, granary::proto::VALUES_FP16, granary::proto::VALUES_INT8}) {
    const std::vector<uint8_t> frame = granary::EncodeValues(encoding, values, 4);
    std::string input = {static_cast<char>(encoding), 4, 2};
    input += Bytes(frame);
    Write(dir / absl::StrCat(granary::proto::ValueEncoding_Name(encoding), "_2x4"), input);
    input[2] = 3;  // a header that claims a row more than the frame holds
    Write(dir / absl::StrCat(granary::proto::ValueEncoding_Name(encoding), "_short"), input);
  }
  // Key frames: the 0x80 prefix (+ encoding), the count the header claims, the frame.
  const std::vector<uint64_t> keys = {0,           1, 1000, uint64_t{1} << 40, ~uint64_t{0} - 1,
                                      ~uint64_t{0}};
  for (granary::proto::KeyEncoding encoding :
       {granary::proto::KEYS_RAW, granary::proto::KEYS_ELIAS_FANO}) {
    const std::vector<uint64_t> words = granary::EncodeKeys(encoding, keys);
    std::string input = {static_cast<char>(0x80 | encoding), static_cast<char>(keys.size()), 0};
    input.append(reinterpret_cast<const char*>(words.data()), words.size() * sizeof(uint64_t));
    Write(dir / absl::StrCat(granary::proto::KeyEncoding_Name(encoding), "_6"), input);
    input[1] = static_cast<char>(keys.size() + 1);  // a header that claims a key more
    Write(dir / absl::StrCat(granary::proto::KeyEncoding_Name(encoding), "_lying_count"), input);
  }
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
  for (const char* target : {"message", "server_request", "delta_file", "vector_file",
                             "checkpoint_manifest", "wire_codec"}) {
    fs::create_directories(corpus / target);
  }
  WriteMessages(corpus / "message");
  WriteServerRequests(corpus / "server_request");
  WriteDeltas(corpus / "delta_file");
  WriteVectors(corpus / "vector_file");
  WriteManifests(corpus / "checkpoint_manifest");
  WriteWireFrames(corpus / "wire_codec");
  return 0;
}
