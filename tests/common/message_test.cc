#include "common/message.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr char kCluster[] = "test-cluster";

proto::Header PushHeader(uint64_t key_bytes, uint64_t value_bytes) {
  proto::Header header = MakeHeader(proto::PUSH, kCluster, proto::WORKER, 3);
  header.set_request_id(17);
  header.set_table("emb");
  header.set_key_bytes(key_bytes);
  header.set_value_bytes(value_bytes);
  return header;
}

std::vector<zmq::message_t> Frames(const proto::Header& header, size_t key_bytes,
                                   size_t value_bytes) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(header.SerializeAsString());
  frames.emplace_back(key_bytes);
  frames.emplace_back(value_bytes);
  return frames;
}

TEST(MessageTest, DecodesAWellFormedPush) {
  Message message;
  absl::Status status = DecodeMessage(Frames(PushHeader(16, 8), 16, 8), kCluster, "peer", &message);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(message.header.request_id(), 17u);
  EXPECT_EQ(message.keys.size(), 16u);
  EXPECT_EQ(message.values.size(), 8u);
}

TEST(MessageTest, RejectsUnparsableHeaderNamingThePeer) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(std::string("\xff\xff\xff garbage"));
  Message message;
  absl::Status status = DecodeMessage(std::move(frames), kCluster, "10.1.2.3", &message);
  ASSERT_TRUE(IsRejection(status)) << status;
  EXPECT_NE(status.message().find("unparsable header"), std::string::npos);
  EXPECT_NE(status.message().find("10.1.2.3"), std::string::npos);
}

TEST(MessageTest, ARejectionTellsThePeerNothingItDidNotSend) {
  proto::Header request = PushHeader(8, 4);
  request.set_cluster_id("guess");
  proto::Header reply = MakeRejectionHeader(request);
  EXPECT_EQ(reply.command(), proto::ERROR_REPLY);
  EXPECT_EQ(reply.error(), "rejected");
  EXPECT_EQ(reply.cluster_id(), "guess");
  EXPECT_EQ(reply.request_id(), 17u);
  EXPECT_EQ(reply.sender_role(), proto::ROLE_UNKNOWN);
  EXPECT_EQ(reply.table(), "");
}

TEST(MessageTest, RejectionsAreLoggedOncePerPeer) {
  RejectionLog log("test node");
  const absl::Status reason = absl::PermissionDeniedError("wrong cluster id");
  EXPECT_TRUE(log.Log("10.0.0.1", reason));
  EXPECT_FALSE(log.Log("10.0.0.1", reason));
  EXPECT_TRUE(log.Log("10.0.0.2", reason));
  for (size_t i = 2; i < RejectionLog::kMaxPeers; ++i) log.Log(absl::StrCat("peer ", i), reason);
  EXPECT_FALSE(log.Log("one peer too many", reason));  // memory stays bounded
}

TEST(MessageTest, RefusesAHeaderFrameOfGigabytesUnread) {
  // A 3 GiB frame is a negative int: it must be refused before Protobuf sees its size. The
  // frame claims 3 GiB over one byte, so reading it at all would crash the test.
  static char byte = 0;
  std::vector<zmq::message_t> frames;
  frames.emplace_back(&byte, size_t{3} << 30, [](void*, void*) {});
  Message message;
  absl::Status status = DecodeMessage(std::move(frames), kCluster, "10.1.2.3", &message);
  ASSERT_TRUE(IsRejection(status)) << status;
  EXPECT_NE(status.message().find("kMaxHeaderBytes"), std::string::npos) << status;
  EXPECT_NE(status.message().find("10.1.2.3"), std::string::npos) << status;
}

TEST(MessageTest, RejectsKeyAndValueSizesTheFramesDoNotCarry) {
  Message message;
  absl::Status status = DecodeMessage(Frames(PushHeader((uint64_t{4} << 30) + 8, 4), 8, 4),
                                      kCluster, "peer", &message);
  ASSERT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("do not match"), std::string::npos) << status;
  EXPECT_EQ(message.keys.size(), 0u);
}

TEST(MessageTest, RejectsWrongClusterIdNamingTheSender) {
  proto::Header header = PushHeader(8, 4);
  header.set_cluster_id("other");
  Message message;
  absl::Status status = DecodeMessage(Frames(header, 8, 4), kCluster, "peer", &message);
  ASSERT_TRUE(IsRejection(status)) << status;
  EXPECT_NE(status.message().find("wrong cluster id 'other'"), std::string::npos);
  EXPECT_NE(status.message().find("worker 3"), std::string::npos);
  EXPECT_NE(status.message().find("request 17"), std::string::npos);
}

TEST(MessageTest, RejectsUnknownCommand) {
  proto::Header header = PushHeader(8, 4);
  header.set_command(static_cast<proto::Command>(999));
  Message message;
  absl::Status status = DecodeMessage(Frames(header, 8, 4), kCluster, "peer", &message);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("unknown command 999"), std::string::npos);
}

TEST(MessageTest, RejectsMissingFrames) {
  std::vector<zmq::message_t> frames = Frames(PushHeader(8, 4), 8, 4);
  frames.pop_back();
  Message message;
  absl::Status status = DecodeMessage(std::move(frames), kCluster, "peer", &message);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("2 frames (expected 3)"), std::string::npos);
}

TEST(MessageTest, RejectsTruncatedFrame) {
  Message message;
  absl::Status status = DecodeMessage(Frames(PushHeader(16, 8), 16, 5), kCluster, "peer", &message);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("truncated"), std::string::npos);
  EXPECT_NE(status.message().find("worker 3"), std::string::npos);
}

TEST(MessageTest, RejectsPartialElements) {
  Message message;
  absl::Status status = DecodeMessage(Frames(PushHeader(12, 8), 12, 8), kCluster, "peer", &message);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("whole number"), std::string::npos);
}

TEST(MessageTest, ControlMessagesHaveOneFrame) {
  proto::Header header;
  header.set_cluster_id(kCluster);
  header.set_command(proto::HEARTBEAT);
  std::vector<zmq::message_t> frames;
  frames.emplace_back(header.SerializeAsString());
  Message message;
  EXPECT_TRUE(DecodeMessage(std::move(frames), kCluster, "peer", &message).ok());
  EXPECT_FALSE(DecodeMessage(Frames(header, 0, 0), kCluster, "peer", &message).ok());
}

// Two connected inproc PAIR sockets.
struct SocketPair {
  explicit SocketPair(const std::string& name) {
    ConfigureSocket(sender);
    ConfigureSocket(receiver);
    receiver.bind("inproc://" + name);
    sender.connect("inproc://" + name);
  }
  zmq::context_t context{1};
  zmq::socket_t sender{context, zmq::socket_type::pair};
  zmq::socket_t receiver{context, zmq::socket_type::pair};
};

TEST(MessageTest, SendThenDecodeRoundTripsOverASocketPair) {
  SocketPair pair("message-test");
  zmq::socket_t& sender = pair.sender;
  zmq::socket_t& receiver = pair.receiver;

  Message out;
  out.header = PushHeader(0, 0);  // sizes are filled in by SendMessage
  out.keys = FrameFromVector(std::vector<uint64_t>{1, 2, 3});
  out.values = FrameFromVector(std::vector<float>{0.5f, 1.5f, 2.5f});
  ASSERT_TRUE(SendMessage(sender, std::move(out)).ok());

  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(receiver, std::back_inserter(frames)));
  Message in;
  absl::Status status = DecodeMessage(std::move(frames), kCluster, "inproc", &in);
  ASSERT_TRUE(status.ok()) << status;
  FrameArray<uint64_t> keys(in.keys);
  FrameArray<float> values(in.values);
  EXPECT_EQ(std::vector<uint64_t>(keys.span().begin(), keys.span().end()),
            (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(std::vector<float>(values.span().begin(), values.span().end()),
            (std::vector<float>{0.5f, 1.5f, 2.5f}));
}

// FrameOfShared views the owner's bytes (no copy) and holds a reference until the frame is gone,
// also across a send over inproc, where ZeroMQ passes the frame on without copying it.
TEST(MessageTest, SharedFramesViewTheOwnersArrayAndReleaseIt) {
  auto owner = std::make_shared<const std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
  const float* data = owner->data();
  {
    zmq::message_t first = FrameOfShared(owner, data, 2 * sizeof(float));
    zmq::message_t rest = FrameOfShared(owner, data + 2, 4 * sizeof(float));
    EXPECT_EQ(first.data(), data);
    EXPECT_EQ(rest.data(), data + 2);
    EXPECT_EQ(rest.size(), 4 * sizeof(float));
    EXPECT_EQ(owner.use_count(), 3);

    SocketPair pair("shared-frame-test");
    ASSERT_TRUE(pair.sender.send(rest, zmq::send_flags::none));
    zmq::message_t received;
    ASSERT_TRUE(pair.receiver.recv(received));
    EXPECT_EQ(received.data(), data + 2);
    EXPECT_EQ(owner.use_count(), 3);  // `rest` moved into ZeroMQ, `received` holds it now
  }
  EXPECT_EQ(owner.use_count(), 1);
  EXPECT_EQ(FrameOfShared(owner, data, 0).size(), 0u);
  EXPECT_EQ(owner.use_count(), 1);  // an empty frame holds nothing
}

TEST(MessageTest, HeaderCarriesTheCommandAndTheSender) {
  proto::Header header = MakeHeader(proto::PULL, kCluster, proto::WORKER, 4);
  EXPECT_EQ(header.command(), proto::PULL);
  EXPECT_EQ(header.cluster_id(), kCluster);
  EXPECT_EQ(header.sender_role(), proto::WORKER);
  EXPECT_EQ(header.sender_rank(), 4);
  EXPECT_EQ(header.request_id(), 0u);
}

TEST(MessageTest, ReplyHeaderEchoesTheRequest) {
  proto::Header request = PushHeader(8, 4);
  request.set_part(2);
  proto::Header reply = MakeReplyHeader(request, proto::PUSH_REPLY, kCluster, proto::SERVER, 1);
  EXPECT_EQ(reply.request_id(), 17u);
  EXPECT_EQ(reply.part(), 2u);
  EXPECT_EQ(reply.table(), "emb");
  EXPECT_EQ(reply.sender_role(), proto::SERVER);
  EXPECT_EQ(reply.sender_rank(), 1);
  EXPECT_EQ(reply.command(), proto::PUSH_REPLY);
  EXPECT_EQ(reply.cluster_id(), kCluster);
}

}  // namespace
}  // namespace granary
