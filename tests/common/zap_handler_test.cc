#include "common/zap_handler.h"

#include <chrono>
#include <optional>
#include <string>

#include "common/curve_keys.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/curve_router.h"

namespace granary {
namespace {

// A cluster's CURVE server (ROUTER) in a context with a ZapHandler, as in the scheduler's and
// the servers' processes.
class ZapHandlerTest : public ::testing::Test {
 protected:
  // Whether "hello" from a DEALER with `client` as its own keypair, and the cluster's public
  // key as the server key, reaches the router within `wait`.
  bool Delivered(const CurveKeys& client, std::chrono::milliseconds wait) {
    zmq::socket_t dealer(context_, zmq::socket_type::dealer);
    ConfigureSocket(dealer);
    dealer.set(zmq::sockopt::curve_serverkey, keys_.public_key);
    dealer.set(zmq::sockopt::curve_publickey, client.public_key);
    dealer.set(zmq::sockopt::curve_secretkey, client.secret_key);
    return router_.Delivered(dealer, wait);
  }

  zmq::context_t context_{1};
  const CurveKeys keys_ = NewCurveKeys();
  ZapHandler zap_{&context_, keys_, "server"};  // before the router binds: it sees the handshakes
  CurveRouter router_{&context_, keys_};
};

TEST_F(ZapHandlerTest, AMemberHoldingTheClusterKeypairGetsThrough) {
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
  EXPECT_EQ(zap_.rejected(), 0);
}

// Knowing the server's public key is enough for CURVE alone; the handler also demands the
// cluster's own keypair, and counts (and logs) the peer it refused.
TEST_F(ZapHandlerTest, APeerKnowingOnlyThePublicKeyIsRejected) {
  EXPECT_FALSE(Delivered(NewCurveKeys(), kSilenceWait));
  EXPECT_GE(zap_.rejected(), 1);
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
}

TEST(ZapHandlerWithoutKeysTest, DoesNothing) {
  zmq::context_t context(1);
  ZapHandler zap(&context, std::nullopt, "server");
  EXPECT_EQ(zap.rejected(), 0);
}

}  // namespace
}  // namespace granary
