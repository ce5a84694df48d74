#include "common/zap_handler.h"

#include <chrono>
#include <optional>
#include <string>

#include "common/curve_keys.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr std::chrono::milliseconds kDeliveryWait{5000};
constexpr std::chrono::milliseconds kSilenceWait{700};

CurveKeys NewKeys() {
  absl::StatusOr<CurveKeys> keys = GenerateCurveKeys();
  EXPECT_TRUE(keys.ok()) << keys.status();
  return *keys;
}

// A cluster's CURVE server (ROUTER) in a context with a ZapHandler, as in the scheduler's and
// the servers' processes.
class ZapHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConfigureSocket(router_);
    ConfigureCurveServer(router_, keys_);
    absl::StatusOr<int> port = BindTcp(router_, "127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    endpoint_ = TcpEndpoint("127.0.0.1", *port);
  }

  // Whether "hello" from a DEALER with `client` as its own keypair, and the cluster's public
  // key as the server key, reaches the router within `wait`.
  bool Delivered(const CurveKeys& client, std::chrono::milliseconds wait) {
    zmq::socket_t dealer(context_, zmq::socket_type::dealer);
    ConfigureSocket(dealer);
    dealer.set(zmq::sockopt::curve_serverkey, keys_.public_key);
    dealer.set(zmq::sockopt::curve_publickey, client.public_key);
    dealer.set(zmq::sockopt::curve_secretkey, client.secret_key);
    dealer.connect(endpoint_);
    dealer.send(zmq::str_buffer("hello"), zmq::send_flags::none);
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    if (PollSockets(&item, 1, wait) <= 0) return false;
    zmq::message_t routing_id, body;
    EXPECT_TRUE(router_.recv(routing_id));
    EXPECT_TRUE(router_.recv(body));
    return body.to_string() == "hello";
  }

  zmq::context_t context_{1};
  const CurveKeys keys_ = NewKeys();
  ZapHandler zap_{&context_, keys_};
  zmq::socket_t router_{context_, zmq::socket_type::router};
  std::string endpoint_;
};

TEST_F(ZapHandlerTest, AMemberHoldingTheClusterKeypairGetsThrough) {
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
  EXPECT_EQ(zap_.rejected(), 0);
}

// Knowing the server's public key is enough for CURVE alone; the handler also demands the
// cluster's own keypair, and counts (and logs) the peer it refused.
TEST_F(ZapHandlerTest, APeerKnowingOnlyThePublicKeyIsRejected) {
  EXPECT_FALSE(Delivered(NewKeys(), kSilenceWait));
  EXPECT_GE(zap_.rejected(), 1);
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
}

TEST(ZapHandlerWithoutKeysTest, DoesNothing) {
  zmq::context_t context(1);
  ZapHandler zap(&context, std::nullopt);
  EXPECT_EQ(zap.rejected(), 0);
}

}  // namespace
}  // namespace granary
