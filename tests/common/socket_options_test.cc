#include "common/socket_options.h"

#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/node_flags.h"
#include "gtest/gtest.h"
#include "zmq_addon.hpp"

namespace granary {
namespace {

constexpr auto kPollBound = std::chrono::seconds(10);

TEST(SocketOptionsTest, EverySocketIsBoundedAndOnlyRoutersDropPastTheirSendMark) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  SocketLimits limits;
  ConfigureSocket(router, limits);
  ConfigureSocket(dealer, limits);
  EXPECT_EQ(router.get(zmq::sockopt::maxmsgsize), limits.max_message_bytes);
  EXPECT_EQ(dealer.get(zmq::sockopt::maxmsgsize), limits.max_message_bytes);
  EXPECT_EQ(router.get(zmq::sockopt::rcvhwm), limits.receive_hwm);
  EXPECT_EQ(dealer.get(zmq::sockopt::rcvhwm), limits.receive_hwm);
  EXPECT_EQ(router.get(zmq::sockopt::sndhwm), limits.router_send_hwm);
  EXPECT_EQ(dealer.get(zmq::sockopt::sndhwm), 0);  // a full DEALER would block its sender
  EXPECT_GT(limits.max_message_bytes, 0);
  EXPECT_GT(limits.receive_hwm, 0);
  EXPECT_GT(limits.router_send_hwm, 0);
}

// A peer sending a frame over max_message_bytes loses its connection; the receiver keeps
// serving, and the peer's next (small) message arrives once its DEALER has reconnected.
TEST(SocketOptionsTest, AnOversizedFrameDropsThePeerAndTheReceiverGoesOn) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  SocketLimits limits;
  limits.max_message_bytes = 1000;
  ConfigureSocket(router, limits);
  ConfigureSocket(dealer);
  absl::StatusOr<int> port = BindTcp(router, "127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  dealer.connect(TcpEndpoint("127.0.0.1", *port));

  dealer.send(zmq::buffer(std::string(2000, 'x')), zmq::send_flags::none);
  zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
  EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(500)), 0) << "oversized frame arrived";

  dealer.send(zmq::str_buffer("small"), zmq::send_flags::none);
  ASSERT_GT(zmq::poll(&item, 1, kPollBound), 0) << "no small message within the bound";
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(router, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 2u);  // routing id, payload
  EXPECT_EQ(frames[1].to_string(), "small");
}

long MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// A large message's memory, freed, serves the next one without being faulted in again: what
// glibc's defaults do not do (there every such malloc gets fresh pages, ~4,000 faults here).
TEST(KeepFreedMessageMemoryTest, AFreedLargeBufferIsReusedWithoutPageFaults) {
  ASSERT_TRUE(KeepFreedMessageMemory());
  constexpr size_t kBytes = size_t{16} << 20;  // a 4M-key pull reply
  constexpr size_t kPageBytes = 4096;
  constexpr long kMaxFaults = 64;  // far below the 4,096 pages of a fresh buffer
  auto touch = [](size_t bytes) {
    char* buffer = static_cast<char*>(std::malloc(bytes));
    for (size_t i = 0; i < bytes; i += kPageBytes) buffer[i] = 1;  // as a receive writes it
    // Keeps the writes: a buffer that nobody reads could be optimised away whole.
    volatile char sink = buffer[bytes - 1];
    (void)sink;
    std::free(buffer);
  };
  touch(kBytes);  // the first one may grow the heap
  const long before = MinorFaults();
  for (int i = 0; i < 3; ++i) touch(kBytes);
  EXPECT_LT(MinorFaults() - before, kMaxFaults);
}

long ThreadMinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// glibc's own account of its arenas (malloc_info): one <heap nr="..."> element per arena.
int MallocArenas() {
  char* text = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  malloc_info(0, out);
  std::fclose(out);
  int arenas = 0;
  for (const char* at = std::strstr(text, "<heap nr="); at != nullptr;
       at = std::strstr(at + 1, "<heap nr=")) {
    ++arenas;
  }
  std::free(text);
  return arenas;
}

// The pattern of a ZeroMQ I/O thread receiving a 4M-key push and pull: a burst of large
// messages alive at once, more than one heap (64 MiB) of the thread's arena, freed together.
// With glibc's defaults the heap they overflowed into is unmapped when the last of them is
// freed and the first is trimmed, so later bursts fault pages in anew (18,435 faults in the
// three timed bursts here); kept, they fault none.
constexpr long kMaxBurstFaults = 64;  // far below the 18,432 pages of a fresh burst

struct BurstsOnAThread {
  long faults_of_later_bursts = -1;  // minor faults of the thread in its three timed bursts
  int arenas = 0;                    // malloc arenas while the thread lives
};

BurstsOnAThread ReceiveBurstsOnAThread() {
  constexpr size_t kMessageBytes = size_t{24} << 20;  // a 2M-key pull's keys, e.g.
  constexpr int kMessagesPerBurst = 3;                // 72 MiB: over one heap
  constexpr size_t kPageBytes = 4096;
  BurstsOnAThread result;
  std::thread receiver([&] {
    auto burst = [&] {
      std::vector<char*> messages;
      for (int m = 0; m < kMessagesPerBurst; ++m) {
        char* message = static_cast<char*>(std::malloc(kMessageBytes));
        for (size_t i = 0; i < kMessageBytes; i += kPageBytes) message[i] = 1;  // as a receive
        volatile char sink = message[kMessageBytes - 1];                        // keeps the writes
        (void)sink;
        messages.push_back(message);
      }
      for (char* message : messages) std::free(message);
    };
    burst();  // the first bursts may grow the arena
    burst();
    const long before = ThreadMinorFaults();
    for (int i = 0; i < 3; ++i) burst();
    result.faults_of_later_bursts = ThreadMinorFaults() - before;
    result.arenas = MallocArenas();
  });
  receiver.join();
  return result;
}

// The thread keeps an arena of its own: compute threads must not queue on one arena's lock.
TEST(KeepFreedMessageMemoryTest, AThreadsBurstOfMessagesOverSeveralHeapsIsReusedWithoutFaults) {
  ASSERT_TRUE(KeepFreedMessageMemory());
  const BurstsOnAThread bursts = ReceiveBurstsOnAThread();
  EXPECT_GE(bursts.faults_of_later_bursts, 0);
  EXPECT_LT(bursts.faults_of_later_bursts, kMaxBurstFaults);
  EXPECT_GE(bursts.arenas, 2) << "the thread shares the main arena";
}

// Servers and workers call KeepFreedMemoryIfFlagged first thing; with the flags' defaults it
// keeps freed memory. Run in a fresh process (mallopt settings are process-wide, and the
// tests above set them).
TEST(KeepFreedMessageMemoryTest, ANodeKeepsFreedMessageMemoryByDefault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        KeepFreedMemoryIfFlagged();
        const long faults = ReceiveBurstsOnAThread().faults_of_later_bursts;
        std::fprintf(stderr, "faults of later bursts: %ld\n", faults);
        std::exit(faults >= 0 && faults < kMaxBurstFaults ? 0 : 1);
      },
      testing::ExitedWithCode(0), "faults of later bursts");
}

}  // namespace
}  // namespace granary
