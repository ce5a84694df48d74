#include "ps/request_check.h"

#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "common/wire_codec.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr char kSender[] = "worker 5 (request 99)";
constexpr int kEmbDim = 2;         // table "emb": a key costs 8 + 2 x 4 = 16 bytes
constexpr int kWideDim = 1 << 20;  // table "wide": a key costs 4 MiB + 8 bytes
constexpr uint64_t kVersion = 3;

TableShape DimOf(const std::string& name) {
  if (name == "emb") return kEmbDim;
  if (name == "wide") return kWideDim;
  // "light": dim 16 on the light wire, an int8 push row of 4 + 16 bytes.
  if (name == "light") return TableShape(16, proto::VALUES_FP16, proto::VALUES_INT8);
  // "ef": "emb" with Elias-Fano keys.
  if (name == "ef") {
    return TableShape(kEmbDim, proto::VALUES_FP32, proto::VALUES_FP32, proto::KEYS_ELIAS_FANO);
  }
  return 0;
}

// A server owning keys [0, 999] and [5000, 5999], at most 100 keys and 50 x 16 bytes.
class RequestCheckTest : public ::testing::Test {
 protected:
  RequestCheckTest() {
    bounds_.server_rank = 1;
    bounds_.shard_map_version = kVersion;
    bounds_.ranges = ranges_;
    bounds_.max_request_keys = 100;
    bounds_.max_request_bytes = 50 * 16;
  }

  static Message Request(proto::Command command, const std::string& table,
                         const std::vector<uint64_t>& keys, const std::vector<float>& values) {
    Message request;
    request.header = MakeHeader(command, "cluster", proto::WORKER, 5);
    request.header.set_table(table);
    request.header.set_shard_map_version(kVersion);
    request.keys = zmq::message_t(keys.data(), keys.size() * sizeof(uint64_t));
    request.values = zmq::message_t(values.data(), values.size() * sizeof(float));
    return request;
  }

  // CheckRequest may replace an encoded key frame by the decoded keys: `request` shows them.
  absl::Status Check(Message& request) const {
    return CheckRequest(&request, kSender, bounds_, DimOf);
  }
  absl::Status Check(Message&& request) const { return Check(request); }

  const std::vector<KeyRange> ranges_ = {{0, 999}, {5000, 5999}};
  RequestBounds bounds_;
};

TEST_F(RequestCheckTest, AcceptsAPullAndAPushOfKeysTheServerOwns) {
  EXPECT_TRUE(Check(Request(proto::PULL, "emb", {1, 999, 5000}, {})).ok());
  EXPECT_TRUE(Check(Request(proto::PUSH, "emb", {7, 5999}, {1, 2, 3, 4})).ok());
  Message read_only = Request(proto::PULL, "emb", {7}, {});
  read_only.header.set_read_only(true);
  EXPECT_TRUE(Check(read_only).ok());
  EXPECT_TRUE(Check(Request(proto::PULL, "emb", {}, {})).ok());
}

TEST_F(RequestCheckTest, RefusesOtherCommandsNamingCommandAndSender) {
  absl::Status status = Check(Request(proto::SHUTDOWN, "emb", {}, {}));
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("SHUTDOWN"), std::string::npos) << status;
  EXPECT_NE(status.message().find(kSender), std::string::npos) << status;
}

TEST_F(RequestCheckTest, RefusesAnotherShardMapVersion) {
  Message stale = Request(proto::PULL, "emb", {1}, {});
  stale.header.set_shard_map_version(kVersion - 1);
  absl::Status status = Check(stale);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("shard map version 2"), std::string::npos) << status;
}

TEST_F(RequestCheckTest, RefusesAnUnknownTableNamingIt) {
  absl::Status status = Check(Request(proto::PULL, "nope", {1}, {}));
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("unknown table 'nope'"), std::string::npos) << status;
  EXPECT_NE(status.message().find(kSender), std::string::npos) << status;
}

TEST_F(RequestCheckTest, RefusesMoreKeysThanTheKeyLimitNamingItsFlagAndTable) {
  std::vector<uint64_t> keys(bounds_.max_request_keys + 1, 1);
  absl::Status status = Check(Request(proto::PULL, "emb", keys, {}));
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find("--max_request_keys"), std::string::npos) << status;
  EXPECT_NE(status.message().find("table 'emb'"), std::string::npos) << status;
}

TEST_F(RequestCheckTest, RefusesMoreBytesThanTheByteLimitAndAcceptsExactlyTheLimit) {
  std::vector<uint64_t> keys(bounds_.max_request_bytes / 16 + 1, 1);
  absl::Status status =
      Check(Request(proto::PUSH, "emb", keys, std::vector<float>(keys.size() * kEmbDim)));
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find("--max_request_bytes"), std::string::npos) << status;
  EXPECT_NE(status.message().find("816 bytes"), std::string::npos) << status;

  keys.pop_back();
  EXPECT_TRUE(Check(Request(proto::PULL, "emb", keys, {})).ok());
  EXPECT_TRUE(
      Check(Request(proto::PUSH, "emb", keys, std::vector<float>(keys.size() * kEmbDim))).ok());
}

TEST_F(RequestCheckTest, APullOfOneKeyOfAHugeDimIsOverTheByteLimitBeforeAnyAllocation) {
  // The reply would be 4 MiB of floats for 8 bytes of request.
  absl::Status status = Check(Request(proto::PULL, "wide", {1}, {}));
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find("(dim 1048576)"), std::string::npos) << status;
}

TEST_F(RequestCheckTest, LimitsAsHighAsSizesGoDoNotOverflow) {
  // With limits no request can reach, the byte check must not wrap around.
  bounds_.max_request_keys = std::numeric_limits<size_t>::max();
  bounds_.max_request_bytes = std::numeric_limits<size_t>::max();
  EXPECT_TRUE(Check(Request(proto::PULL, "wide", {1, 2}, {})).ok());
  absl::Status lying = Check(Request(proto::PUSH, "wide", {1}, {1}));
  EXPECT_TRUE(absl::IsInvalidArgument(lying)) << lying;
}

TEST_F(RequestCheckTest, RefusesValueBytesThatDoNotMatchKeysTimesDim) {
  // A PUSH whose values are one row short, one float long, and a PULL that carries values.
  absl::Status short_push = Check(Request(proto::PUSH, "emb", {1, 2}, {1, 2}));
  EXPECT_TRUE(absl::IsInvalidArgument(short_push)) << short_push;
  EXPECT_NE(short_push.message().find("carries 8 value bytes, expected 16"), std::string::npos)
      << short_push;
  EXPECT_TRUE(absl::IsInvalidArgument(Check(Request(proto::PUSH, "emb", {1}, {1, 2, 3}))));
  EXPECT_TRUE(absl::IsInvalidArgument(Check(Request(proto::PULL, "emb", {1}, {1, 2}))));
}

TEST_F(RequestCheckTest, RefusesReadOnlyOnAPush) {
  Message push = Request(proto::PUSH, "emb", {1}, {1, 2});
  push.header.set_read_only(true);
  absl::Status status = Check(push);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("read_only is only for PULL"), std::string::npos) << status;
}

TEST_F(RequestCheckTest, RefusesAKeyOutsideTheRangesNamingKeyAndServer) {
  // Both ends inside owned ranges, one key between them: the per-key pass must find it.
  absl::Status status = Check(Request(proto::PULL, "emb", {1, 1000, 5999}, {}));
  EXPECT_TRUE(absl::IsOutOfRange(status)) << status;
  EXPECT_NE(status.message().find("key 0x00000000000003e8"), std::string::npos) << status;
  EXPECT_NE(status.message().find("server 1"), std::string::npos) << status;
  EXPECT_TRUE(absl::IsOutOfRange(Check(Request(proto::PULL, "emb", {6000}, {}))));
}

// The one-range pass takes the range of the first key: a key below it (which wraps around in an
// unsigned subtraction), far above it, or just past either end, anywhere in a long request, must
// still be found.
TEST_F(RequestCheckTest, EveryKeyOfALongRequestIsCheckedAgainstItsRange) {
  const std::vector<uint64_t> outsiders = {4999, 6000, 1000, std::numeric_limits<uint64_t>::max()};
  for (uint64_t outsider : outsiders) {
    for (size_t position : {size_t{1}, size_t{37}, size_t{49}}) {
      std::vector<uint64_t> keys(50);  // the byte limit
      for (size_t i = 0; i < keys.size(); ++i) keys[i] = 5000 + i;
      keys[position] = outsider;
      absl::Status status = Check(Request(proto::PULL, "emb", keys, {}));
      EXPECT_TRUE(absl::IsOutOfRange(status)) << outsider << " at " << position << ": " << status;
    }
  }
  std::vector<uint64_t> edges = {5000, 5999, 5000, 5999};
  EXPECT_TRUE(Check(Request(proto::PULL, "emb", edges, {})).ok());
}

TEST(FirstNonFiniteTest, FindsTheFirstInfOrNaNOrReturnsTheSize) {
  const float kInf = std::numeric_limits<float>::infinity();
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> finite = {0, -1, std::numeric_limits<float>::max(), 1e-45f};
  EXPECT_EQ(FirstNonFinite(finite), finite.size());
  EXPECT_EQ(FirstNonFinite({}), 0u);
  const std::vector<float> poisoned = {1, 2, kNaN, -kInf};
  EXPECT_EQ(FirstNonFinite(poisoned), 2u);
  const std::vector<float> inf_first = {-kInf, kNaN};
  EXPECT_EQ(FirstNonFinite(inf_first), 0u);
}

TEST_F(RequestCheckTest, ValuesMustComeInTheTablesWireEncoding) {
  auto request = [](proto::Command command, const std::string& table, size_t keys,
                    proto::ValueEncoding encoding, size_t value_bytes) {
    Message message;
    message.header = MakeHeader(command, "cluster", proto::WORKER, 5);
    message.header.set_table(table);
    message.header.set_shard_map_version(kVersion);
    message.header.set_value_encoding(encoding);
    std::vector<uint64_t> key_values(keys);
    std::iota(key_values.begin(), key_values.end(), 1);
    message.keys = zmq::message_t(key_values.data(), keys * sizeof(uint64_t));
    message.values = zmq::message_t(value_bytes);
    return message;
  };
  EXPECT_TRUE(Check(request(proto::PUSH, "light", 3, proto::VALUES_INT8, 3 * 20)).ok());
  EXPECT_TRUE(Check(request(proto::PULL, "light", 3, proto::VALUES_FP16, 0)).ok());
  // A frame of fp32 size under an int8 header: the decoded size would disagree.
  absl::Status status = Check(request(proto::PUSH, "light", 3, proto::VALUES_INT8, 3 * 64));
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("carries 192 value bytes, expected 60, from worker 5"),
            std::string::npos)
      << status;
  // A worker configured otherwise than the server.
  status = Check(request(proto::PUSH, "light", 3, proto::VALUES_FP32, 3 * 64));
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("PUSH to table 'light' from worker 5 (request 99) has values "
                                  "encoded VALUES_FP32, but the server's table takes VALUES_INT8"),
            std::string::npos)
      << status;
  EXPECT_TRUE(
      absl::IsInvalidArgument(Check(request(proto::PULL, "emb", 3, proto::VALUES_FP16, 0))));
  status = Check(request(proto::PUSH, "light", 1, static_cast<proto::ValueEncoding>(77), 20));
  EXPECT_NE(status.message().find("encoded #77"), std::string::npos) << status;
}

// A request to table "ef" whose key frame is `words` (an Elias-Fano frame) declared as `count`.
Message EliasFanoRequest(proto::Command command, const std::vector<uint64_t>& words, uint64_t count,
                         size_t value_floats) {
  Message message;
  message.header = MakeHeader(command, "cluster", proto::WORKER, 5);
  message.header.set_table("ef");
  message.header.set_shard_map_version(kVersion);
  message.header.set_key_encoding(proto::KEYS_ELIAS_FANO);
  message.header.set_key_count(count);
  message.keys = zmq::message_t(words.data(), words.size() * sizeof(uint64_t));
  message.values = zmq::message_t(value_floats * sizeof(float));
  return message;
}

TEST_F(RequestCheckTest, EliasFanoKeysAreDecodedCheckedAndRangeChecked) {
  const std::vector<uint64_t> keys = {1, 999, 5000, 5999};
  Message pull = EliasFanoRequest(proto::PULL, EncodeKeys(proto::KEYS_ELIAS_FANO, keys), 4, 0);
  ASSERT_TRUE(Check(pull).ok()) << Check(pull);
  // The key frame now holds the decoded raw keys.
  ASSERT_EQ(pull.keys.size(), keys.size() * sizeof(uint64_t));
  EXPECT_EQ(std::vector<uint64_t>(static_cast<const uint64_t*>(pull.keys.data()),
                                  static_cast<const uint64_t*>(pull.keys.data()) + keys.size()),
            keys);
  EXPECT_TRUE(Check(EliasFanoRequest(proto::PUSH, EncodeKeys(proto::KEYS_ELIAS_FANO, keys), 4,
                                     keys.size() * kEmbDim))
                  .ok());

  // Raw keys are taken by any table (a worker sends a part raw where Elias-Fano would not be
  // smaller); an encoding the table does not use is refused.
  EXPECT_TRUE(Check(Request(proto::PULL, "ef", keys, {})).ok());
  Message encoded_to_raw =
      EliasFanoRequest(proto::PULL, EncodeKeys(proto::KEYS_ELIAS_FANO, keys), 4, 0);
  encoded_to_raw.header.set_table("emb");
  absl::Status status = Check(encoded_to_raw);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("PULL to table 'emb' from worker 5 (request 99) has keys encoded "
                                  "KEYS_ELIAS_FANO, but the server's table takes KEYS_RAW ("),
            std::string::npos)
      << status;

  // The header's count is bounded before anything is decoded or allocated.
  status = Check(EliasFanoRequest(proto::PULL, EncodeKeys(proto::KEYS_ELIAS_FANO, keys),
                                  uint64_t{1} << 62, 0));
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find("--max_request_keys"), std::string::npos) << status;

  // A truncated frame, a lying count, repeated keys: refused naming the sender and the table.
  std::vector<uint64_t> truncated = EncodeKeys(proto::KEYS_ELIAS_FANO, keys);
  truncated.pop_back();
  status = Check(EliasFanoRequest(proto::PULL, truncated, 4, 0));
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("PULL to table 'ef' from worker 5 (request 99): a key frame of"),
            std::string::npos)
      << status;
  EXPECT_TRUE(absl::IsInvalidArgument(
      Check(EliasFanoRequest(proto::PULL, EncodeKeys(proto::KEYS_ELIAS_FANO, keys), 3, 0))));
  status =
      Check(EliasFanoRequest(proto::PULL, EncodeKeys(proto::KEYS_ELIAS_FANO, {7, 7, 8, 9}), 4, 0));
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("from worker 5 (request 99): an Elias-Fano key frame of 4 keys "
                                  "is not strictly ascending"),
            std::string::npos)
      << status;

  // Decoded keys go through the range checks.
  status =
      Check(EliasFanoRequest(proto::PULL, EncodeKeys(proto::KEYS_ELIAS_FANO, {1, 1000}), 2, 0));
  EXPECT_TRUE(absl::IsOutOfRange(status)) << status;
  EXPECT_NE(status.message().find("key 0x00000000000003e8 in table 'ef'"), std::string::npos)
      << status;
}

}  // namespace
}  // namespace granary
