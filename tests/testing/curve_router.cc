#include "tests/testing/curve_router.h"

#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/socket_options.h"
#include "gtest/gtest.h"

namespace granary {

CurveKeys NewCurveKeys() {
  absl::StatusOr<CurveKeys> keys = GenerateCurveKeys();
  EXPECT_TRUE(keys.ok()) << keys.status();
  return keys.ok() ? *keys : CurveKeys();
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
