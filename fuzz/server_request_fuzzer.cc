// Fuzz target: the server's request validation, DecodeMessage (common/message.h) followed by
// CheckRequest (ps/request_check.h), as ParameterServer::Handle runs them, without a server
// process. The input is the frames of one multi-part message (fuzz/frames.h).
//
// A request CheckRequest accepts must keep its promise and is then executed as the server
// would, on a small in-memory table: a PULL's reply allocated (keys x dim floats, bounded by the
// limits) and filled, a PUSH's gradients checked by FirstNonFinite and added to the rows, so
// ASan sees any read past a frame. A refused one must name its sender, and an over-limit one
// the limit's flag. The server's RocksDB tables are not built into the fuzz build; what they do
// with an accepted request is tests/ps/embedding_table_test.cc's.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/message.h"
#include "common/wire_codec.h"
#include "fuzz/frames.h"
#include "ps/request_check.h"

namespace {

constexpr char kPeer[] = "fuzz peer";
// Small limits, so that inputs of a few KB cross them.
constexpr size_t kMaxKeys = 256;
constexpr size_t kMaxBytes = 4096;
// The server's tables (the seeds use "emb"): a key of "one" costs 12 bytes, so 257 keys cross
// the key limit under the byte limit; a key of "emb" costs 24 bytes, so 171 keys cross the byte
// limit under the key limit; one key of "wide" is over the byte limit alone.
constexpr int kOneDim = 1;
constexpr int kEmbDim = 4;
constexpr int kWideDim = 1 << 16;
// Rows of the in-memory tables; key k is row k % kRows.
constexpr size_t kRows = 64;
// Rank 0 of shard-map version 1 (the seeds' version), owning two ranges so that a request
// spanning the gap passes the min/max test only by being refused per key.
constexpr uint64_t kShardMapVersion = 1;
const granary::KeyRange kRanges[] = {
    {0, (uint64_t{1} << 62) - 1}, {uint64_t{1} << 63, (uint64_t{1} << 63) + (uint64_t{1} << 62)}};

// "light" is "emb" on the light wire (fp16 pulls, int8 pushes: common/wire_codec.h).
granary::TableShape DimOf(const std::string& table) {
  if (table == "one") return kOneDim;
  if (table == "emb") return kEmbDim;
  if (table == "light") {
    return granary::TableShape(kEmbDim, granary::proto::VALUES_FP16, granary::proto::VALUES_INT8);
  }
  if (table == "wide") return kWideDim;
  // "efkeys" is "emb" with Elias-Fano keys (common/wire_codec.h).
  if (table == "efkeys") {
    return granary::TableShape(kEmbDim, granary::proto::VALUES_FP32, granary::proto::VALUES_FP32,
                               granary::proto::KEYS_ELIAS_FANO);
  }
  return 0;
}

bool Owned(uint64_t key) {
  for (const granary::KeyRange& range : kRanges) {
    if (range.Contains(key)) return true;
  }
  return false;
}

// The rows of table `name` (dim DimOf(name)), kRows of them, zero at first.
std::vector<float>& RowsOf(const std::string& name) {
  static std::vector<float>* const one = new std::vector<float>(kRows * kOneDim);
  static std::vector<float>* const emb = new std::vector<float>(kRows * kEmbDim);
  static std::vector<float>* const light = new std::vector<float>(kRows * kEmbDim);
  static std::vector<float>* const wide = new std::vector<float>(kRows * kWideDim);
  if (name == "one") return *one;
  if (name == "emb" || name == "efkeys") return *emb;
  if (name == "light") return *light;
  return *wide;
}

bool Contains(const absl::Status& status, const std::string& text) {
  return status.message().find(text) != absl::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  granary::Message request;
  if (!granary::DecodeMessage(granary::fuzz::SplitFrames(data, size), granary::fuzz::kClusterId,
                              kPeer, &request)
           .ok()) {
    return 0;
  }
  const std::string sender = granary::DescribeSender(request.header, kPeer);
  granary::RequestBounds bounds;
  bounds.server_rank = 0;
  bounds.shard_map_version = kShardMapVersion;
  bounds.ranges = kRanges;
  bounds.max_request_keys = kMaxKeys;
  bounds.max_request_bytes = kMaxBytes;
  const absl::Status status = granary::CheckRequest(&request, sender, bounds, DimOf);
  if (!status.ok()) {
    if (!Contains(status, sender)) __builtin_trap();
    if (absl::IsResourceExhausted(status) && !Contains(status, "--max_request_")) {
      __builtin_trap();
    }
    return 0;
  }

  // Accepted: CheckRequest's promise.
  const granary::proto::Header& header = request.header;
  const bool push = header.command() == granary::proto::PUSH;
  if (!push && header.command() != granary::proto::PULL) __builtin_trap();
  if (push && header.read_only()) __builtin_trap();
  const granary::TableShape shape = DimOf(header.table());
  const int dim = shape.dim;
  if (dim <= 0) __builtin_trap();
  const granary::FrameArray<uint64_t> keys(request.keys);
  const size_t row_floats = static_cast<size_t>(dim);
  if (keys.size() > kMaxKeys ||
      keys.size() * (sizeof(uint64_t) + row_floats * sizeof(float)) > kMaxBytes) {
    __builtin_trap();
  }
  if (header.value_encoding() != (push ? shape.push_values : shape.pull_values)) __builtin_trap();
  const bool raw_keys = header.key_encoding() == granary::proto::KEYS_RAW;
  if (!raw_keys && header.key_encoding() != shape.keys) __builtin_trap();
  // Encoded keys were replaced by the decoded ones: their declared count, strictly ascending.
  if (!raw_keys) {
    if (keys.size() != header.key_count()) __builtin_trap();
    for (size_t i = 1; i < keys.size(); ++i) {
      if (keys.span()[i] <= keys.span()[i - 1]) __builtin_trap();
    }
  }
  if (request.values.size() !=
      (push ? keys.size() * granary::EncodedRowBytes(shape.push_values, row_floats) : 0)) {
    __builtin_trap();
  }
  for (uint64_t key : keys.span()) {
    if (!Owned(key)) __builtin_trap();
  }

  // Executed as ParameterServer::Handle would, on the in-memory rows.
  std::vector<float>& rows = RowsOf(header.table());
  if (!push) {
    std::vector<float> reply(keys.size() * row_floats);
    for (size_t i = 0; i < keys.size(); ++i) {
      const float* row = &rows[(keys.span()[i] % kRows) * row_floats];
      std::copy(row, row + row_floats, &reply[i * row_floats]);
    }
    return 0;
  }
  // Decoded as the server does (ps/server.cc): a frame CheckRequest accepted always decodes.
  std::vector<float> grads(keys.size() * row_floats);
  if (!granary::DecodeValues(shape.push_values,
                             absl::MakeConstSpan(static_cast<const uint8_t*>(request.values.data()),
                                                 request.values.size()),
                             keys.size(), row_floats, grads.data())
           .ok()) {
    __builtin_trap();
  }
  const size_t bad = granary::FirstNonFinite(grads);
  if (bad < grads.size()) {
    if (std::isfinite(grads[bad])) __builtin_trap();
    return 0;  // refused whole, as the server does
  }
  if (bad != grads.size()) __builtin_trap();
  for (size_t i = 0; i < keys.size(); ++i) {
    float* row = &rows[(keys.span()[i] % kRows) * row_floats];
    for (size_t j = 0; j < row_floats; ++j) {
      // Bounded, so that the rows stay finite over millions of executions.
      row[j] = std::clamp(row[j] - grads[i * row_floats + j], -1.0f, 1.0f);
    }
  }
  return 0;
}
