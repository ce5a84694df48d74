#include "common/socket_poller.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <iterator>
#include <limits>

#include "zmq_addon.hpp"

namespace granary {

SocketPoller::SocketPoller(std::vector<zmq::socket_t*> sockets)
    : sockets_(std::move(sockets)), unasked_(sockets_.size(), true) {
  for (zmq::socket_t* socket : sockets_) {
    descriptors_.push_back(pollfd{socket->get(zmq::sockopt::fd), POLLIN, 0});
  }
}

bool SocketPoller::Wait(std::chrono::milliseconds timeout) {
  bool ready = false;
  for (size_t i = 0; i < sockets_.size(); ++i) {
    if (!unasked_[i]) continue;
    if (sockets_[i]->get(zmq::sockopt::events) & ZMQ_POLLIN) {
      ready = true;  // stays unasked: the caller receives it
    } else {
      unasked_[i] = false;
    }
  }
  if (ready) return true;
  const int timeout_ms =
      timeout.count() < 0
          ? -1
          : static_cast<int>(std::min<int64_t>(timeout.count(), std::numeric_limits<int>::max()));
  const int waited = poll(descriptors_.data(), descriptors_.size(), timeout_ms);
  if (waited <= 0) {
    if (waited < 0 && errno != EINTR) throw zmq::error_t();
    return false;
  }
  for (size_t i = 0; i < descriptors_.size(); ++i) {
    if (descriptors_[i].revents != 0) unasked_[i] = true;
  }
  return true;
}

bool SocketPoller::TryReceive(size_t i, std::vector<zmq::message_t>* frames) {
  frames->clear();
  if (zmq::recv_multipart(*sockets_[i], std::back_inserter(*frames), zmq::recv_flags::dontwait)) {
    return true;
  }
  unasked_[i] = false;
  return false;
}

bool SocketPoller::Receive(size_t i, std::vector<zmq::message_t>* frames,
                           std::chrono::milliseconds timeout) {
  frames->clear();
  sockets_[i]->set(
      zmq::sockopt::rcvtimeo,
      static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, std::numeric_limits<int>::max())));
  // Whatever happened, the socket's commands were processed: it stays unasked only if a
  // message came (more may wait behind it).
  const bool received = zmq::recv_multipart(*sockets_[i], std::back_inserter(*frames)).has_value();
  unasked_[i] = received;
  return received;
}

}  // namespace granary
