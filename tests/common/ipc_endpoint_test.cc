#include "common/ipc_endpoint.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "zmq_addon.hpp"

namespace granary {
namespace {

constexpr auto kPollBound = std::chrono::seconds(10);

class IpcEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("ipc-endpoint-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  zmq::context_t context_{1};
};

TEST_F(IpcEndpointTest, LocalHostIdIsTheBootIdAndHostNameAndStable) {
  const std::string id = LocalHostId();
  ASSERT_FALSE(id.empty());
  EXPECT_NE(id.find('/'), std::string::npos) << id;
  EXPECT_EQ(LocalHostId(), id);
}

// A server's socket folder is new and private each time, under the given parent or $TMPDIR,
// never inside a data folder; a parent that cannot hold it is an error naming it.
TEST_F(IpcEndpointTest, MakeIpcDirMakesANewPrivateFolder) {
  absl::StatusOr<std::string> first = MakeIpcDir(dir_);
  absl::StatusOr<std::string> second = MakeIpcDir(dir_);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*first, *second);
  EXPECT_EQ(std::filesystem::path(*first).parent_path(), std::filesystem::path(dir_));
  struct stat info {};
  ASSERT_EQ(stat(first->c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);

  ASSERT_EQ(setenv("TMPDIR", dir_.c_str(), 1), 0);
  absl::StatusOr<std::string> from_env = MakeIpcDir("");
  unsetenv("TMPDIR");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(std::filesystem::path(*from_env).parent_path(), std::filesystem::path(dir_));

  absl::StatusOr<std::string> missing = MakeIpcDir(dir_ + "/no/such/folder");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir_ + "/no/such/folder"), std::string::npos)
      << missing.status();
}

// The folder is created private (only this user may connect), the endpoint is absolute, and a
// DEALER that connects to it reaches the ROUTER.
TEST_F(IpcEndpointTest, BindIpcServesFromAPrivateFolder) {
  zmq::socket_t router(context_, zmq::socket_type::router);
  ConfigureSocket(router);
  const std::string folder = dir_ + "/run/ipc";
  absl::StatusOr<std::string> endpoint = BindIpc(router, folder, "server-1.sock");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(*endpoint, "ipc://" + folder + "/server-1.sock");
  struct stat info {};
  ASSERT_EQ(stat(folder.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);

  zmq::socket_t dealer(context_, zmq::socket_type::dealer);
  ConfigureSocket(dealer);
  dealer.connect(*endpoint);
  dealer.send(zmq::str_buffer("over ipc"), zmq::send_flags::none);
  zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_GT(zmq::poll(&item, 1, kPollBound), 0) << "nothing arrived within the bound";
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(router, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 2u);  // routing id, payload
  EXPECT_EQ(frames[1].to_string(), "over ipc");
}

// A killed server leaves its socket file behind; the next one binds over it.
TEST_F(IpcEndpointTest, BindIpcReplacesAStaleFile) {
  std::ofstream(dir_ + "/server-2.sock") << "left behind";
  zmq::socket_t router(context_, zmq::socket_type::router);
  ConfigureSocket(router);
  absl::StatusOr<std::string> endpoint = BindIpc(router, dir_, "server-2.sock");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_TRUE(std::filesystem::is_socket(dir_ + "/server-2.sock"));
}

TEST_F(IpcEndpointTest, BindIpcRefusesAPathTooLongForASocketAddressNamingIt) {
  zmq::socket_t router(context_, zmq::socket_type::router);
  const std::string folder = dir_ + "/" + std::string(kMaxIpcPathBytes, 'd');
  absl::StatusOr<std::string> endpoint = BindIpc(router, folder, "server-3.sock");
  ASSERT_FALSE(endpoint.ok());
  EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(endpoint.status().message().find(folder + "/server-3.sock"), std::string::npos)
      << endpoint.status();
  EXPECT_FALSE(std::filesystem::exists(folder));
}

// ipc only for a server of the same host whose socket file is visible; TCP otherwise.
TEST_F(IpcEndpointTest, ServerEndpointIsIpcOnlyOnTheSameHost) {
  zmq::socket_t router(context_, zmq::socket_type::router);
  absl::StatusOr<std::string> ipc = BindIpc(router, dir_, "server-4.sock");
  ASSERT_TRUE(ipc.ok()) << ipc.status();
  proto::NodeInfo server;
  server.set_host("10.1.2.3");
  server.set_port(4567);
  server.set_host_id("boot/host-a");
  server.set_ipc_endpoint(*ipc);
  const std::string tcp = "tcp://10.1.2.3:4567";
  EXPECT_EQ(ServerEndpoint(server, "boot/host-a"), *ipc);
  EXPECT_EQ(ServerEndpoint(server, "boot/host-b"), tcp);
  EXPECT_EQ(ServerEndpoint(server, ""), tcp);  // this host unknown
  proto::NodeInfo unknown_host = server;
  unknown_host.set_host_id("");
  EXPECT_EQ(ServerEndpoint(unknown_host, ""), tcp);
  proto::NodeInfo tcp_only = server;
  tcp_only.set_ipc_endpoint("");
  EXPECT_EQ(ServerEndpoint(tcp_only, "boot/host-a"), tcp);
  proto::NodeInfo invisible = server;  // e.g. another container with the same host name
  invisible.set_ipc_endpoint("ipc://" + dir_ + "/no-such.sock");
  EXPECT_EQ(ServerEndpoint(invisible, "boot/host-a"), tcp);
}

}  // namespace
}  // namespace granary
