#include "common/handshake_monitor.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/curve_keys.h"
#include "common/socket_options.h"
#include "common/zap_handler.h"
#include "gtest/gtest.h"
#include "tests/testing/curve_router.h"
#include "tests/testing/warning_collector.h"

namespace granary {
namespace {

// Loopback addresses the test's peers connect from, so that the log can tell them apart.
constexpr char kPlainPeer[] = "127.0.0.2";
constexpr char kWrongServerKeyPeer[] = "127.0.0.3";
constexpr char kMemberPeer[] = "127.0.0.4";

// Connections a test tries until the monitor names the peer: one whose handshake fails before
// the monitor looks up its address is logged as "unknown address" (see the header).
constexpr int kMaxAttempts = 10;

// A cluster's CURVE server (ROUTER) with a ZapHandler and a HandshakeMonitor, as in the
// scheduler's and the servers' processes.
class HandshakeMonitorTest : public ::testing::Test {
 protected:
  // Whether "hello" from a DEALER connecting from `source_ip`, configured by `configure`,
  // reaches the router. The DEALER has a context of its own, as a peer in another process.
  template <typename Configure>
  bool Delivered(const std::string& source_ip, Configure configure,
                 std::chrono::milliseconds wait) {
    zmq::socket_t dealer(client_context_, zmq::socket_type::dealer);
    ConfigureSocket(dealer);
    configure(dealer);
    return router_.Delivered(dealer, wait, source_ip);
  }
  bool PlainDelivered(const std::string& source_ip) {
    return Delivered(
        source_ip, [](zmq::socket_t&) {}, kSilenceWait);
  }
  bool WrongServerKeyDelivered(const std::string& source_ip) {
    return Delivered(
        source_ip,
        [this](zmq::socket_t& dealer) {
          dealer.set(zmq::sockopt::curve_serverkey, stranger_.public_key);
          dealer.set(zmq::sockopt::curve_publickey, keys_.public_key);
          dealer.set(zmq::sockopt::curve_secretkey, keys_.secret_key);
        },
        kSilenceWait);
  }

  // Log lines that name `address` as a rejected peer.
  int LinesNaming(const std::string& address) const {
    int lines = 0;
    for (const std::string& line : warnings_.messages()) {
      lines += absl::StrContains(line, absl::StrCat("server rejected a peer at ", address, ":"));
    }
    return lines;
  }
  // Tries `attempt` (which must not get through) until the log names `address`; false if it
  // never did in kMaxAttempts.
  template <typename Attempt>
  bool AttemptUntilLogged(const std::string& address, Attempt attempt) {
    for (int i = 0; i < kMaxAttempts; ++i) {
      EXPECT_FALSE(attempt());
      if (LinesNaming(address) > 0) return true;
    }
    return false;
  }
  std::string Log() const {
    std::string log;
    for (const std::string& line : warnings_.messages()) absl::StrAppend(&log, line, "\n");
    return log;
  }

  WarningCollector warnings_;
  zmq::context_t context_{1};
  zmq::context_t client_context_{1};
  const CurveKeys keys_ = NewCurveKeys();
  const CurveKeys stranger_ = NewCurveKeys();
  ZapHandler zap_{&context_, keys_, "server"};
  CurveRouter router_{&context_, keys_};
  HandshakeMonitor monitor_{&context_, router_.socket(), "server", keys_};
};

// A plain ZeroMQ client (no CURVE) and one encrypting to another server key never reach the
// ZAP handler; the monitor logs each address once, however often it retries.
TEST_F(HandshakeMonitorTest, LogsEachPeerDroppedInTheHandshakeOncePerAddress) {
  EXPECT_TRUE(AttemptUntilLogged(kPlainPeer, [&] { return PlainDelivered(kPlainPeer); })) << Log();
  EXPECT_GE(monitor_.dropped(), 1);
  EXPECT_EQ(LinesNaming(kPlainPeer), 1) << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "it does not hold the cluster's CURVE keys")) << Log();

  const int dropped = monitor_.dropped();
  EXPECT_FALSE(PlainDelivered(kPlainPeer));  // a new connection from another source port
  EXPECT_GT(monitor_.dropped(), dropped);
  EXPECT_EQ(LinesNaming(kPlainPeer), 1) << Log();

  EXPECT_TRUE(AttemptUntilLogged(kWrongServerKeyPeer, [&] {
    return WrongServerKeyDelivered(kWrongServerKeyPeer);
  })) << Log();
  EXPECT_EQ(LinesNaming(kWrongServerKeyPeer), 1) << Log();
  EXPECT_FALSE(WrongServerKeyDelivered(kWrongServerKeyPeer));
  EXPECT_EQ(LinesNaming(kWrongServerKeyPeer), 1) << Log();

  // A member still gets through, and is not logged.
  EXPECT_TRUE(Delivered(
      kMemberPeer, [this](zmq::socket_t& dealer) { ConfigureCurveClient(dealer, keys_); },
      kDeliveryWait));
  EXPECT_EQ(LinesNaming(kMemberPeer), 0) << Log();
  EXPECT_EQ(zap_.rejected(), 0);  // none of them reached the ZAP handler
}

// A peer the ZAP handler refuses (it knows the public key, not the secret) is the handler's to
// log: one line for it, not a second from the monitor.
TEST_F(HandshakeMonitorTest, LeavesPeersRefusedByZapToTheZapHandler) {
  EXPECT_FALSE(Delivered(
      kWrongServerKeyPeer,
      [this](zmq::socket_t& dealer) {
        dealer.set(zmq::sockopt::curve_serverkey, keys_.public_key);
        dealer.set(zmq::sockopt::curve_publickey, stranger_.public_key);
        dealer.set(zmq::sockopt::curve_secretkey, stranger_.secret_key);
      },
      kSilenceWait));
  EXPECT_GE(zap_.rejected(), 1);
  EXPECT_EQ(monitor_.dropped(), 0);
  EXPECT_EQ(LinesNaming(kWrongServerKeyPeer), 1) << Log();
}

TEST(HandshakeMonitorStopTest, StopsWithinItsDeadline) {
  zmq::context_t context(1);
  const CurveKeys keys = NewCurveKeys();
  CurveRouter router(&context, keys);
  const auto start = std::chrono::steady_clock::now();
  { HandshakeMonitor monitor(&context, router.socket(), "server", keys); }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3 * kHandshakeMonitorStopCheck);
}

TEST(HandshakeMonitorWithoutKeysTest, DoesNothing) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::router);
  HandshakeMonitor monitor(&context, socket, "server", std::nullopt);
  EXPECT_EQ(monitor.dropped(), 0);
}

}  // namespace
}  // namespace granary
