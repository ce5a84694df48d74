#include "common/node_flags.h"

#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/curve_keys.h"
#include "common/security_flags.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

TEST(NodeFlagsTest, MissingSchedulerIsAnErrorNamingTheFlag) {
  gflags::FlagSaver saver;
  FLAGS_scheduler = "";
  absl::StatusOr<SchedulerClientOptions> options =
      SchedulerClientOptionsFromFlags(proto::SERVER, /*port=*/0);
  ASSERT_TRUE(absl::IsInvalidArgument(options.status()));
  EXPECT_EQ(options.status().message(), "--scheduler is required");
}

TEST(NodeFlagsTest, TranslatesTheSharedFlags) {
  gflags::FlagSaver saver;
  FLAGS_scheduler = "10.0.0.1:7000";
  FLAGS_cluster_id = "c1";
  FLAGS_host = "10.0.0.2";
  FLAGS_heartbeat_interval = 0.5;
  FLAGS_heartbeat_timeout = 3;
  FLAGS_register_timeout = 20;
  FLAGS_insecure_no_auth = true;
  absl::StatusOr<SchedulerClientOptions> options =
      SchedulerClientOptionsFromFlags(proto::WORKER, /*port=*/4000);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->scheduler_address, "10.0.0.1:7000");
  EXPECT_EQ(options->cluster_id, "c1");
  EXPECT_EQ(options->role, proto::WORKER);
  EXPECT_EQ(options->host, "10.0.0.2");
  EXPECT_EQ(options->port, 4000);
  EXPECT_EQ(options->heartbeat_interval, absl::Milliseconds(500));
  EXPECT_EQ(options->heartbeat_timeout, absl::Seconds(3));
  EXPECT_EQ(options->register_timeout, absl::Seconds(20));
  EXPECT_FALSE(options->curve.has_value());  // --insecure_no_auth: unauthenticated
}

TEST(NodeFlagsTest, WithoutKeysOrTheInsecureFlagANodeRefusesNamingKeysDir) {
  gflags::FlagSaver saver;
  FLAGS_scheduler = "10.0.0.1:7000";
  FLAGS_keys_dir = "";
  FLAGS_insecure_no_auth = false;
  absl::StatusOr<SchedulerClientOptions> options =
      SchedulerClientOptionsFromFlags(proto::SERVER, /*port=*/0);
  ASSERT_TRUE(absl::IsInvalidArgument(options.status()));
  EXPECT_NE(options.status().message().find("--keys_dir is required"), std::string::npos)
      << options.status();
}

TEST(NodeFlagsTest, KeysDirGivesTheClusterKeysAndALooseKeyFileIsAnErrorNamingIt) {
  gflags::FlagSaver saver;
  const std::string dir = MakeTempDir("node-flags-keys");
  absl::StatusOr<CurveKeys> keys = GenerateCurveKeys();
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_TRUE(WriteCurveKeys(dir, *keys).ok());
  FLAGS_scheduler = "10.0.0.1:7000";
  FLAGS_keys_dir = dir;
  absl::StatusOr<SchedulerClientOptions> options =
      SchedulerClientOptionsFromFlags(proto::SERVER, /*port=*/0);
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(options->curve.has_value());
  EXPECT_EQ(options->curve->public_key, keys->public_key);

  ASSERT_EQ(chmod(CurveKeyFilePath(dir).c_str(), 0640), 0);
  options = SchedulerClientOptionsFromFlags(proto::SERVER, /*port=*/0);
  EXPECT_TRUE(absl::IsPermissionDenied(options.status()));
  EXPECT_NE(options.status().message().find(CurveKeyFilePath(dir)), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(NodeFlagsTest, SocketLimitFlagsReachTheOptions) {
  gflags::FlagSaver saver;
  FLAGS_scheduler = "10.0.0.1:7000";
  FLAGS_insecure_no_auth = true;
  FLAGS_max_message_bytes = int64_t{8} << 20;
  FLAGS_receive_hwm = 7;
  FLAGS_send_hwm = 9;
  absl::StatusOr<SchedulerClientOptions> options =
      SchedulerClientOptionsFromFlags(proto::WORKER, /*port=*/0);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->socket_limits.max_message_bytes, int64_t{8} << 20);
  EXPECT_EQ(options->socket_limits.receive_hwm, 7);
  EXPECT_EQ(options->socket_limits.router_send_hwm, 9);
}

TEST(NodeFlagsTest, TheSocketLimitDefaultsAreThoseOfSocketLimits) {
  absl::StatusOr<SocketLimits> limits = SocketLimitsFromFlags();
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->max_message_bytes, SocketLimits().max_message_bytes);
  EXPECT_EQ(limits->receive_hwm, SocketLimits().receive_hwm);
  EXPECT_EQ(limits->router_send_hwm, SocketLimits().router_send_hwm);
}

TEST(NodeFlagsTest, AMaxMessageBytesBelowTheMinimumIsAnErrorNamingTheFlag) {
  gflags::FlagSaver saver;
  FLAGS_max_message_bytes = kMinMaxMessageBytes - 1;
  absl::StatusOr<SocketLimits> limits = SocketLimitsFromFlags();
  ASSERT_TRUE(absl::IsInvalidArgument(limits.status())) << limits.status();
  EXPECT_NE(limits.status().message().find("--max_message_bytes="), std::string::npos)
      << limits.status();
  FLAGS_max_message_bytes = kMinMaxMessageBytes;
  EXPECT_TRUE(SocketLimitsFromFlags().ok());
}

TEST(NodeFlagsTest, AHighWaterMarkNotPositiveIsAnErrorNamingTheFlag) {
  for (const char* flag : {"receive_hwm", "send_hwm"}) {
    for (int value : {0, -1}) {
      gflags::FlagSaver saver;
      (std::string(flag) == "receive_hwm" ? FLAGS_receive_hwm : FLAGS_send_hwm) = value;
      absl::StatusOr<SocketLimits> limits = SocketLimitsFromFlags();
      ASSERT_TRUE(absl::IsInvalidArgument(limits.status())) << flag << "=" << value;
      EXPECT_NE(limits.status().message().find(absl::StrCat("--", flag, "=", value)),
                std::string::npos)
          << limits.status();
    }
  }
}

TEST(NodeFlagsTest, AMaxMessageBytesBelowTheServersMaxRequestBytesIsAnErrorNamingBoth) {
  SocketLimits limits;
  limits.max_message_bytes = int64_t{64} << 20;
  EXPECT_TRUE(CheckMessageBytesAdmitRequests(limits, uint64_t{64} << 20).ok());
  absl::Status status = CheckMessageBytesAdmitRequests(limits, (uint64_t{64} << 20) + 1);
  ASSERT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("--max_message_bytes=67108864 is below --max_request_bytes="),
            std::string::npos)
      << status;
  // The defaults agree.
  EXPECT_TRUE(CheckMessageBytesAdmitRequests(SocketLimits(), size_t{1} << 30).ok());
}

}  // namespace
}  // namespace granary
