// A cluster's CURVE server for tests of authenticated links: a ROUTER on a free port of
// 127.0.0.1 configured with the cluster's keys (ConfigureCurveServer, common/curve_keys.h), and
// whether a DEALER's message gets through to it.
#ifndef GRANARY_TESTS_TESTING_CURVE_ROUTER_H_
#define GRANARY_TESTS_TESTING_CURVE_ROUTER_H_

#include <chrono>
#include <functional>
#include <string>

#include "common/curve_keys.h"
#include "zmq.hpp"

namespace granary {

// How long a message that should arrive may take, and how long to listen for one that must not.
inline constexpr std::chrono::milliseconds kDeliveryWait{5000};
inline constexpr std::chrono::milliseconds kSilenceWait{700};

// A fresh keypair; a failure to generate one fails the calling test.
CurveKeys NewCurveKeys();

// Whether a DEALER set up by `configure` gets a reply from the Granary server at `endpoint`
// (tcp:// or ipc://) to a garbage request within `wait`. A member gets the bare rejection
// (kRejectedText, common/message.h); an outsider gets nothing.
bool ServerAnswers(zmq::context_t& context, const std::string& endpoint,
                   const std::function<void(zmq::socket_t&)>& configure,
                   std::chrono::milliseconds wait);

// Expects (gtest) that the CURVE server at `endpoint` answers a holder of `keys` only: not a
// client without CURVE, nor one that knows the public key but holds a keypair of its own.
void ExpectOnlyKeyHoldersAnswered(zmq::context_t& context, const std::string& endpoint,
                                  const CurveKeys& keys);

class CurveRouter {
 public:
  // Binds. A ZapHandler that is to see the router's handshakes must exist in `context` first.
  CurveRouter(zmq::context_t* context, const CurveKeys& keys);

  // Connects `dealer` (configured by the caller), sends "hello" and reports whether the router
  // received it within `wait`. With `source_ip` (another loopback address, e.g. "127.0.0.2"),
  // the dealer connects from there, so that tests can tell peers apart by address.
  bool Delivered(zmq::socket_t& dealer, std::chrono::milliseconds wait,
                 const std::string& source_ip = "");

  // The router itself, e.g. to monitor it.
  zmq::socket_t& socket() { return router_; }

 private:
  zmq::socket_t router_;
  std::string endpoint_;
};

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_CURVE_ROUTER_H_
