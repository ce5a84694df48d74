#include "common/socket_poller.h"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "zmq_addon.hpp"

namespace granary {
namespace {

// Longest any test here waits for a message that must come.
constexpr std::chrono::milliseconds kArrivalBound(10000);
// A wait for a message that must not come: long enough that a signal in flight would land.
constexpr std::chrono::milliseconds kQuietWait(200);
// Longer than libzmq's throttle on the command checks a send makes (about 1 ms of CPU cycles),
// so that the next send does check, and takes in the notice of a message that arrived.
constexpr std::chrono::milliseconds kPastSendThrottle(20);

// Two DEALERs joined over inproc: what one sends, the other receives.
class SocketPollerTest : public ::testing::Test {
 protected:
  SocketPollerTest()
      : context_(1),
        near_(context_, zmq::socket_type::dealer),
        far_(context_, zmq::socket_type::dealer) {
    near_.set(zmq::sockopt::linger, 0);
    far_.set(zmq::sockopt::linger, 0);
    near_.bind("inproc://socket-poller-test");
    far_.connect("inproc://socket-poller-test");
  }

  zmq::context_t context_;
  zmq::socket_t near_;
  zmq::socket_t far_;
};

TEST_F(SocketPollerTest, AMessageWaitingBeforeTheFirstWaitIsFoundWithoutSleeping) {
  far_.send(zmq::str_buffer("early"), zmq::send_flags::none);
  SocketPoller poller({&near_});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(poller.Wait(kArrivalBound));
  EXPECT_LT(std::chrono::steady_clock::now() - start, kQuietWait);
  ASSERT_TRUE(poller.MayHaveInput(0));
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(poller.TryReceive(0, &frames));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].to_string(), "early");
  EXPECT_TRUE(poller.MayHaveInput(0));  // more may wait behind it
  EXPECT_FALSE(poller.TryReceive(0, &frames));
  EXPECT_FALSE(poller.MayHaveInput(0));
}

TEST_F(SocketPollerTest, AnEmptySocketTimesOutAndALaterMessageWakesTheWait) {
  SocketPoller poller({&near_});
  EXPECT_FALSE(poller.Wait(kQuietWait));
  EXPECT_FALSE(poller.MayHaveInput(0));

  std::thread sender([this] {
    std::this_thread::sleep_for(kPastSendThrottle);
    far_.send(zmq::str_buffer("late"), zmq::send_flags::none);
  });
  const bool woken = poller.Wait(kArrivalBound);
  sender.join();
  ASSERT_TRUE(woken);
  ASSERT_TRUE(poller.MayHaveInput(0));
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(poller.TryReceive(0, &frames));
  EXPECT_EQ(frames[0].to_string(), "late");
}

// A send on a socket may take in the notice of a message that arrived for it; its descriptor
// then stays quiet. Told of the send, the poller asks the socket before sleeping.
TEST_F(SocketPollerTest, AMessageWhoseNoticeASendTookInIsFoundAfterSent) {
  SocketPoller poller({&near_});
  std::vector<zmq::message_t> frames;
  ASSERT_FALSE(poller.TryReceive(0, &frames));  // asked: trusted to its descriptor
  far_.send(zmq::str_buffer("reply"), zmq::send_flags::none);
  std::this_thread::sleep_for(kPastSendThrottle);
  near_.send(zmq::str_buffer("request"), zmq::send_flags::none);
  poller.Sent(0);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(poller.Wait(kArrivalBound));
  EXPECT_LT(std::chrono::steady_clock::now() - start, kQuietWait);
  ASSERT_TRUE(poller.TryReceive(0, &frames));
  EXPECT_EQ(frames[0].to_string(), "reply");
}

TEST_F(SocketPollerTest, ReceiveSleepsOnOneSocketUntilItsMessageComesOrTheTimeout) {
  zmq::socket_t other(context_, zmq::socket_type::dealer);
  other.set(zmq::sockopt::linger, 0);
  other.bind("inproc://socket-poller-test-receive");
  zmq::socket_t other_far(context_, zmq::socket_type::dealer);
  other_far.set(zmq::sockopt::linger, 0);
  other_far.connect("inproc://socket-poller-test-receive");
  SocketPoller poller({&near_, &other});
  std::vector<zmq::message_t> frames;
  EXPECT_FALSE(poller.Receive(0, &frames, kQuietWait));
  EXPECT_FALSE(poller.MayHaveInput(0));

  // A message on the other socket does not end the sleep; the one on socket 0 does.
  other_far.send(zmq::str_buffer("to other"), zmq::send_flags::none);
  std::thread sender([this] {
    std::this_thread::sleep_for(kPastSendThrottle);
    far_.send(zmq::str_buffer("to near"), zmq::send_flags::none);
  });
  const bool received = poller.Receive(0, &frames, kArrivalBound);
  sender.join();
  ASSERT_TRUE(received);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].to_string(), "to near");
  EXPECT_TRUE(poller.MayHaveInput(0));
  // The other socket's message waits for a later Wait.
  ASSERT_TRUE(poller.Wait(kArrivalBound));
  ASSERT_TRUE(poller.MayHaveInput(1));
  ASSERT_TRUE(poller.TryReceive(1, &frames));
  EXPECT_EQ(frames[0].to_string(), "to other");
}

TEST_F(SocketPollerTest, OnlyTheSocketThatSignalledMayHaveInput) {
  zmq::socket_t other(context_, zmq::socket_type::dealer);
  other.set(zmq::sockopt::linger, 0);
  other.bind("inproc://socket-poller-test-other");
  SocketPoller poller({&near_, &other});
  EXPECT_FALSE(poller.Wait(kQuietWait));

  far_.send(zmq::str_buffer("to near"), zmq::send_flags::none);
  ASSERT_TRUE(poller.Wait(kArrivalBound));
  EXPECT_TRUE(poller.MayHaveInput(0));
  EXPECT_FALSE(poller.MayHaveInput(1));
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(poller.TryReceive(0, &frames));
  EXPECT_EQ(frames[0].to_string(), "to near");
}

}  // namespace
}  // namespace granary
