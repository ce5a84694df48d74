#include "tests/testing/curve_router.h"

#include <cstring>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/message.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"
#include "zmq_addon.hpp"

namespace granary {

CurveKeys NewCurveKeys() {
  absl::StatusOr<CurveKeys> keys = GenerateCurveKeys();
  EXPECT_TRUE(keys.ok()) << keys.status();
  return keys.ok() ? *keys : CurveKeys();
}

bool ServerAnswers(zmq::context_t& context, const std::string& endpoint,
                   const std::function<void(zmq::socket_t&)>& configure,
                   std::chrono::milliseconds wait) {
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  ConfigureSocket(dealer);
  configure(dealer);
  dealer.connect(endpoint);
  dealer.send(zmq::str_buffer("not a header"), zmq::send_flags::none);
  zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
  if (PollSockets(&item, 1, wait) <= 0) return false;
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(dealer, std::back_inserter(frames))) return false;
  proto::Header reply;
  return reply.ParseFromArray(frames[0].data(), static_cast<int>(frames[0].size())) &&
         reply.error() == kRejectedText;
}

void ExpectOnlyKeyHoldersAnswered(zmq::context_t& context, const std::string& endpoint,
                                  const CurveKeys& keys) {
  EXPECT_FALSE(ServerAnswers(
      context, endpoint, [](zmq::socket_t&) {}, kSilenceWait))
      << "a client without CURVE was answered";
  const CurveKeys stranger = NewCurveKeys();
  EXPECT_FALSE(ServerAnswers(
      context, endpoint,
      [&](zmq::socket_t& dealer) {  // knows the public key only: the ZAP handler refuses it
        dealer.set(zmq::sockopt::curve_serverkey, keys.public_key);
        dealer.set(zmq::sockopt::curve_publickey, stranger.public_key);
        dealer.set(zmq::sockopt::curve_secretkey, stranger.secret_key);
      },
      kSilenceWait))
      << "a client with a keypair of its own was answered";
  EXPECT_TRUE(ServerAnswers(
      context, endpoint, [&](zmq::socket_t& dealer) { ConfigureCurveClient(dealer, keys); },
      kDeliveryWait))
      << "the cluster's keys were not answered";
}

CurveRouter::CurveRouter(zmq::context_t* context, const CurveKeys& keys)
    : router_(*context, zmq::socket_type::router) {
  ConfigureSocket(router_);
  ConfigureCurveServer(router_, keys);
  absl::StatusOr<int> port = BindTcp(router_, "127.0.0.1", 0);
  EXPECT_TRUE(port.ok()) << port.status();
  if (port.ok()) endpoint_ = TcpEndpoint("127.0.0.1", *port);
}

bool CurveRouter::Delivered(zmq::socket_t& dealer, std::chrono::milliseconds wait,
                            const std::string& source_ip) {
  // ZeroMQ's "tcp://SOURCE:PORT;DESTINATION:PORT" connects from SOURCE (port 0: any).
  dealer.connect(source_ip.empty() ? endpoint_
                                   : absl::StrCat("tcp://", source_ip, ":0;",
                                                  endpoint_.substr(std::strlen("tcp://"))));
  dealer.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
  if (PollSockets(&item, 1, wait) <= 0) return false;
  zmq::message_t routing_id, body;
  EXPECT_TRUE(router_.recv(routing_id));
  EXPECT_TRUE(router_.recv(body));
  return body.to_string() == "hello";
}

}  // namespace granary
