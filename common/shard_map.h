// ShardMap: which parameter server owns which contiguous range of the 64-bit key space.
//
// The scheduler builds it, versions it, and publishes it in every node's ClusterView. Every
// data-plane message carries the version it was routed with, so a server can tell a stale
// router from a key that is truly not its own.
//
// Thread-safe for concurrent const access; immutable after construction.
#ifndef GRANARY_COMMON_SHARD_MAP_H_
#define GRANARY_COMMON_SHARD_MAP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/proto/message.pb.h"

namespace granary {

// An inclusive range of keys [first, last]; inclusive so that the top range can end at
// 2^64 - 1 without overflow.
struct KeyRange {
  uint64_t first = 0;
  uint64_t last = 0;
  bool Contains(uint64_t key) const { return key >= first && key <= last; }
};

// A run of a sorted key array that one server owns: keys[begin, end) go to `server_rank`.
struct KeySlice {
  int server_rank = 0;
  size_t begin = 0;
  size_t end = 0;
};

class ShardMap {
 public:
  ShardMap() = default;

  // Cuts [0, 2^64) into `num_servers` ranges of equal width, range i owned by server i.
  // REQUIRES: num_servers >= 1.
  static ShardMap EvenSplit(int num_servers, uint64_t version);

  // Returns InvalidArgument if there are no ranges, or they do not start at 0, are not strictly
  // increasing, or name a negative server rank.
  static absl::StatusOr<ShardMap> FromProto(const proto::ShardMapProto& proto);
  proto::ShardMapProto ToProto() const;

  uint64_t version() const { return version_; }
  int num_servers() const { return num_servers_; }
  size_t num_ranges() const { return range_begins_.size(); }

  // Rank of the server owning `key`. REQUIRES: num_ranges() > 0.
  int ServerForKey(uint64_t key) const;

  // The ranges `server_rank` owns, in key order (empty for an unknown rank).
  std::vector<KeyRange> RangesOf(int server_rank) const;

  // Splits `sorted_keys` (ascending) into per-server runs, in key order. Runs of the same
  // server are merged only when adjacent. O(num_ranges * log(n)).
  std::vector<KeySlice> SliceSortedKeys(absl::Span<const uint64_t> sorted_keys) const;

  std::string DebugString() const;

 private:
  uint64_t version_ = 0;
  int num_servers_ = 0;
  std::vector<uint64_t> range_begins_;  // ascending, range_begins_[0] == 0
  std::vector<int> range_servers_;      // owner of each range
};

}  // namespace granary

#endif  // GRANARY_COMMON_SHARD_MAP_H_
