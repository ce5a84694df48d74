#include "common/message.h"

#include "absl/strings/str_cat.h"
#include "common/node_name.h"
#include "glog/logging.h"

namespace granary {

bool IsDataCommand(proto::Command command) {
  switch (command) {
    case proto::PULL:
    case proto::PULL_REPLY:
    case proto::PUSH:
    case proto::PUSH_REPLY:
      return true;
    default:
      return false;
  }
}

absl::Status SendMessage(zmq::socket_t& socket, Message&& message, zmq::message_t* routing_id) {
  bool data = IsDataCommand(message.header.command());
  if (data) {
    message.header.set_key_bytes(message.keys.size());
    message.header.set_value_bytes(message.values.size());
  }
  std::string header_bytes;
  message.header.SerializeToString(&header_bytes);
  try {
    if (routing_id != nullptr) socket.send(*routing_id, zmq::send_flags::sndmore);
    socket.send(zmq::buffer(header_bytes), data ? zmq::send_flags::sndmore : zmq::send_flags::none);
    if (data) {
      socket.send(message.keys, zmq::send_flags::sndmore);
      socket.send(message.values, zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("send failed: ", e.what()));
  }
  return absl::OkStatus();
}

zmq::message_t FrameOfShared(std::shared_ptr<const void> owner, const void* data, size_t bytes) {
  if (bytes == 0) return zmq::message_t();
  auto* reference = new std::shared_ptr<const void>(std::move(owner));
  return zmq::message_t(
      const_cast<void*>(data), bytes,
      [](void*, void* hint) { delete static_cast<std::shared_ptr<const void>*>(hint); }, reference);
}

std::string PeerAddress(zmq::message_t& frame) {
  const char* address = nullptr;
  try {
    address = frame.gets("Peer-Address");
  } catch (const zmq::error_t&) {
    // Not every transport knows its peer (inproc); fall through.
  }
  return address != nullptr ? std::string(address) : std::string("unknown peer");
}

std::string DescribeSender(const proto::Header& header, const std::string& peer) {
  if (header.sender_role() == proto::ROLE_UNKNOWN) return absl::StrCat("peer ", peer);
  return absl::StrCat(RoleName(header.sender_role()), " ", header.sender_rank(), " at ", peer,
                      " (request ", header.request_id(), ")");
}

absl::Status DecodeMessage(std::vector<zmq::message_t>&& frames, const std::string& cluster_id,
                           const std::string& peer, Message* message) {
  message->header.Clear();
  if (frames.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("empty message from peer ", peer));
  }
  if (frames[0].size() > kMaxHeaderBytes) {
    return absl::PermissionDeniedError(absl::StrCat("header of ", frames[0].size(),
                                                    " bytes (limit kMaxHeaderBytes ",
                                                    kMaxHeaderBytes, ") from peer ", peer));
  }
  if (!message->header.ParseFromArray(frames[0].data(), static_cast<int>(frames[0].size()))) {
    message->header.Clear();
    return absl::PermissionDeniedError(
        absl::StrCat("unparsable header (", frames[0].size(), " bytes) from peer ", peer));
  }
  const proto::Header& header = message->header;
  // Only errors name the sender: built when one needs it, not for every message.
  auto sender = [&] { return DescribeSender(header, peer); };
  if (header.cluster_id() != cluster_id) {
    return absl::PermissionDeniedError(absl::StrCat("wrong cluster id '", header.cluster_id(),
                                                    "' (expected '", cluster_id, "') from ",
                                                    sender()));
  }
  if (!proto::Command_IsValid(header.command()) || header.command() == proto::COMMAND_UNKNOWN) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command ", static_cast<int>(header.command()), " from ", sender()));
  }
  size_t expected_frames = IsDataCommand(header.command()) ? 3 : 1;
  if (frames.size() != expected_frames) {
    return absl::InvalidArgumentError(absl::StrCat(proto::Command_Name(header.command()), " with ",
                                                   frames.size(), " frames (expected ",
                                                   expected_frames, ") from ", sender()));
  }
  if (expected_frames == 3) {
    if (frames[1].size() != header.key_bytes() || frames[2].size() != header.value_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          proto::Command_Name(header.command()), " frames of ", frames[1].size(), " key bytes and ",
          frames[2].size(), " value bytes do not match the header's ", header.key_bytes(), " and ",
          header.value_bytes(), " (truncated or corrupt) from ", sender()));
    }
    if (header.key_bytes() % sizeof(uint64_t) != 0 || header.value_bytes() % sizeof(float) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(proto::Command_Name(header.command()), " key bytes ", header.key_bytes(),
                       " or value bytes ", header.value_bytes(),
                       " not a whole number of elements from ", sender()));
    }
    message->keys = std::move(frames[1]);
    message->values = std::move(frames[2]);
  }
  return absl::OkStatus();
}

bool IsRejection(const absl::Status& status) { return absl::IsPermissionDenied(status); }

proto::Header MakeRejectionHeader(const proto::Header& request) {
  proto::Header reply;
  reply.set_command(proto::ERROR_REPLY);
  reply.set_cluster_id(request.cluster_id());
  reply.set_request_id(request.request_id());
  reply.set_error(kRejectedText);
  return reply;
}

bool RejectionLog::Log(const std::string& peer, const absl::Status& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (peers_.size() >= kMaxPeers) {
    if (!full_logged_) {
      LOG(WARNING) << receiver_ << " rejected messages from " << kMaxPeers
                   << " peers; rejections of further peers are not logged";
      full_logged_ = true;
    }
    return false;
  }
  if (!peers_.insert(peer).second) return false;
  LOG(WARNING) << receiver_
               << (what_ == Rejected::kMessage ? " rejected a message from "
                                               : " rejected a peer at ")
               << peer << ": " << reason.message() << " (further rejections of " << peer
               << " are not logged)";
  return true;
}

proto::Header MakeHeader(proto::Command command, const std::string& cluster_id, proto::Role role,
                         int rank) {
  proto::Header header;
  header.set_cluster_id(cluster_id);
  header.set_sender_role(role);
  header.set_sender_rank(rank);
  header.set_command(command);
  return header;
}

proto::Header MakeReplyHeader(const proto::Header& request, proto::Command command,
                              const std::string& cluster_id, proto::Role role, int rank) {
  proto::Header reply = MakeHeader(command, cluster_id, role, rank);
  reply.set_request_id(request.request_id());
  reply.set_table(request.table());
  reply.set_shard_map_version(request.shard_map_version());
  reply.set_part(request.part());
  return reply;
}

}  // namespace granary
