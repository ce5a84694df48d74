#include "common/curve_keys.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/curve_router.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

TEST(CurveKeysTest, WrittenKeysLoadBackFromAnOwnerOnlyFile) {
  const std::string dir = MakeTempDir("curve-keys") + "/keys";
  const CurveKeys keys = NewCurveKeys();
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
  ASSERT_TRUE(WriteCurveKeys(dir, NewCurveKeys()).ok());
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
  ASSERT_TRUE(WriteCurveKeys(dir, CurveKeys{"too-short", NewCurveKeys().secret_key}).ok());
  absl::StatusOr<CurveKeys> loaded = LoadCurveKeys(dir);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find(CurveKeyFilePath(dir) + ":1"), std::string::npos)
      << loaded.status();
  std::filesystem::remove_all(dir);
}

// A ROUTER bound as the cluster's CURVE server, as the scheduler's and the servers' are.
class CurveLinkTest : public ::testing::Test {
 protected:
  // Whether "hello" from a DEALER configured with `curve` (nullopt: plain) gets through.
  bool Delivered(const std::optional<CurveKeys>& curve, std::chrono::milliseconds wait) {
    zmq::socket_t dealer(context_, zmq::socket_type::dealer);
    ConfigureSocket(dealer);
    ConfigureCurveClient(dealer, curve);
    return router_.Delivered(dealer, wait);
  }

  zmq::context_t context_{1};
  const CurveKeys keys_ = NewCurveKeys();
  CurveRouter router_{&context_, keys_};
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
  EXPECT_FALSE(Delivered(NewCurveKeys(), kSilenceWait));
  EXPECT_TRUE(Delivered(keys_, kDeliveryWait));
}

}  // namespace
}  // namespace granary
