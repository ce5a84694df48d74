#include "common/curve_keys.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

// How long a message that should arrive may take, and how long we listen for one that must not.
constexpr std::chrono::milliseconds kDeliveryWait{5000};
constexpr std::chrono::milliseconds kSilenceWait{700};

CurveKeys NewKeys() {
  absl::StatusOr<CurveKeys> keys = GenerateCurveKeys();
  EXPECT_TRUE(keys.ok()) << keys.status();
  return *keys;
}

TEST(CurveKeysTest, WrittenKeysLoadBackFromAnOwnerOnlyFile) {
  const std::string dir = MakeTempDir("curve-keys") + "/keys";
  const CurveKeys keys = NewKeys();
  EXPECT_EQ(keys.public_key.size(), kCurveKeyTextLength);
  ASSERT_TRUE(WriteCurveKeys(dir, keys).ok());

  struct stat info;
  ASSERT_EQ(stat(CurveKeyFilePath(dir).c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  absl::StatusOr<CurveKeys> loaded = LoadCurveKeys(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->public_key, keys.public_key);
  EXPECT_EQ(loaded->secret_key, keys.secret_key);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST(CurveKeysTest, AKeyFileOthersCanReadIsRefusedNamingIt) {
  const std::string dir = MakeTempDir("curve-keys");
  ASSERT_TRUE(WriteCurveKeys(dir, NewKeys()).ok());
  ASSERT_EQ(chmod(CurveKeyFilePath(dir).c_str(), 0644), 0);
  absl::StatusOr<CurveKeys> loaded = LoadCurveKeys(dir);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(loaded.status().message().find(CurveKeyFilePath(dir)), std::string::npos)
      << loaded.status();
  std::filesystem::remove_all(dir);
}

TEST(CurveKeysTest, MissingOrMalformedKeysAreErrorsNamingTheFile) {
  const std::string dir = MakeTempDir("curve-keys");
  EXPECT_EQ(LoadCurveKeys(dir).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteCurveKeys(dir, CurveKeys{"too-short", NewKeys().secret_key}).ok());
  absl::StatusOr<CurveKeys> loaded = LoadCurveKeys(dir);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find(CurveKeyFilePath(dir) + ":1"), std::string::npos)
      << loaded.status();
  std::filesystem::remove_all(dir);
}

// A ROUTER bound as the cluster's CURVE server, as the scheduler's and the servers' are.
class CurveLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConfigureSocket(router_);
    ConfigureCurveServer(router_, keys_);
    absl::StatusOr<int> port = BindTcp(router_, "127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    endpoint_ = TcpEndpoint("127.0.0.1", *port);
  }

  // Sends "hello" from a DEALER configured with `curve` (nullopt: plain) and reports whether
  // the router received it within `wait`.
  bool Delivered(const std::optional<CurveKeys>& curve, std::chrono::milliseconds wait) {
    zmq::socket_t dealer(context_, zmq::socket_type::dealer);
    ConfigureSocket(dealer);
    ConfigureCurveClient(dealer, curve);
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
  zmq::socket_t router_{context_, zmq::socket_type::router};
  const CurveKeys keys_ = NewKeys();
  std::string endpoint_;
};

TEST_F(CurveLinkTest, APeerWithTheClusterKeysGetsThrough) {
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
}

TEST_F(CurveLinkTest, APeerWithoutKeysGetsNoMessageThrough) {
  EXPECT_FALSE(Delivered(std::nullopt, kSilenceWait));
  // The server still serves members afterwards.
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
}

TEST_F(CurveLinkTest, APeerWithAnotherClustersKeysGetsNoMessageThrough) {
  EXPECT_FALSE(Delivered(NewKeys(), kSilenceWait));
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
}

}  // namespace
}  // namespace granary
