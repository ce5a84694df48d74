// granary_ctl: operator commands sent to a running scheduler.
//   granary_ctl --scheduler=HOST:PORT shutdown     orderly shutdown of the whole cluster
//   granary_ctl --scheduler=HOST:PORT checkpoint   a consistent checkpoint now; prints its
//                                                  folder once the manifest is written
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/message.h"
#include "common/process_init.h"
#include "common/socket_options.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_string(scheduler, "", "host:port of the scheduler.");
DEFINE_string(cluster_id, "granary", "The cluster's id.");
DEFINE_double(timeout, 30.0, "Seconds to wait for the scheduler's acknowledgement.");

int main(int argc, char** argv) {
  granary::InitProcess("granary_ctl --scheduler=HOST:PORT shutdown|checkpoint", &argc, &argv);
  const std::string verb = argc == 2 ? argv[1] : "";
  if ((verb != "shutdown" && verb != "checkpoint") || FLAGS_scheduler.empty()) {
    LOG(ERROR) << "usage: granary_ctl --scheduler=HOST:PORT shutdown|checkpoint";
    return EXIT_FAILURE;
  }
  const bool shutdown = verb == "shutdown";
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  granary::ConfigureSocket(socket);
  socket.connect(absl::StrCat("tcp://", FLAGS_scheduler));
  granary::proto::Header header =
      granary::MakeHeader(shutdown ? granary::proto::SHUTDOWN : granary::proto::CHECKPOINT_NOW,
                          FLAGS_cluster_id, granary::proto::CONTROL, 0);
  header.set_request_id(1);
  absl::Status sent = granary::SendMessage(socket, granary::Message{header, {}, {}});
  if (!sent.ok()) {
    LOG(ERROR) << sent.message();
    return EXIT_FAILURE;
  }
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (granary::PollSockets(
          &item, 1, std::chrono::milliseconds(static_cast<long>(FLAGS_timeout * 1000))) <= 0) {
    LOG(ERROR) << "scheduler " << FLAGS_scheduler << " did not acknowledge " << verb << " within "
               << FLAGS_timeout << " s";
    return EXIT_FAILURE;
  }
  std::vector<zmq::message_t> frames;
  (void)zmq::recv_multipart(socket, std::back_inserter(frames));
  granary::Message reply;
  absl::Status decoded =
      granary::DecodeMessage(std::move(frames), FLAGS_cluster_id, FLAGS_scheduler, &reply);
  const granary::proto::Command expected =
      shutdown ? granary::proto::SHUTDOWN_ACK : granary::proto::ACK;
  if (!decoded.ok() || reply.header.command() != expected) {
    LOG(ERROR) << "scheduler " << FLAGS_scheduler << " answered: "
               << (decoded.ok() ? reply.header.error() : std::string(decoded.message()));
    return EXIT_FAILURE;
  }
  if (!shutdown) {
    std::printf("%s\n", reply.header.checkpoint_dir().c_str());
    LOG(INFO) << "checkpoint " << reply.header.checkpoint_dir() << " written";
    return EXIT_SUCCESS;
  }
  LOG(INFO) << "cluster at " << FLAGS_scheduler << " shut down";
  return EXIT_SUCCESS;
}
