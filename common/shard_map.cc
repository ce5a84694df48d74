#include "common/shard_map.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace granary {

ShardMap ShardMap::EvenSplit(int num_servers, uint64_t version) {
  ShardMap map;
  map.version_ = version;
  map.num_servers_ = num_servers;
  // Width of each range, computed in 128 bits so that 2^64 / n is exact for any n.
  for (int i = 0; i < num_servers; ++i) {
    unsigned __int128 begin = (static_cast<unsigned __int128>(1) << 64) * i / num_servers;
    map.range_begins_.push_back(static_cast<uint64_t>(begin));
    map.range_servers_.push_back(i);
  }
  return map;
}

absl::StatusOr<ShardMap> ShardMap::FromProto(const proto::ShardMapProto& proto) {
  ShardMap map;
  map.version_ = proto.version();
  if (proto.ranges_size() == 0) return absl::InvalidArgumentError("shard map has no ranges");
  for (int i = 0; i < proto.ranges_size(); ++i) {
    const proto::ShardRange& range = proto.ranges(i);
    if (i == 0 && range.begin() != 0) {
      return absl::InvalidArgumentError("shard map's first range does not start at key 0");
    }
    if (i > 0 && range.begin() <= proto.ranges(i - 1).begin()) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard map range ", i, " does not start after range ", i - 1));
    }
    if (range.server_rank() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard map range ", i, " has negative server rank ", range.server_rank()));
    }
    map.range_begins_.push_back(range.begin());
    map.range_servers_.push_back(range.server_rank());
    map.num_servers_ = std::max(map.num_servers_, range.server_rank() + 1);
  }
  return map;
}

proto::ShardMapProto ShardMap::ToProto() const {
  proto::ShardMapProto proto;
  proto.set_version(version_);
  for (size_t i = 0; i < range_begins_.size(); ++i) {
    proto::ShardRange* range = proto.add_ranges();
    range->set_begin(range_begins_[i]);
    range->set_server_rank(range_servers_[i]);
  }
  return proto;
}

int ShardMap::ServerForKey(uint64_t key) const {
  // The owning range is the last one whose begin is <= key.
  auto it = std::upper_bound(range_begins_.begin(), range_begins_.end(), key);
  return range_servers_[static_cast<size_t>(it - range_begins_.begin()) - 1];
}

std::vector<KeyRange> ShardMap::RangesOf(int server_rank) const {
  std::vector<KeyRange> ranges;
  for (size_t i = 0; i < range_begins_.size(); ++i) {
    if (range_servers_[i] != server_rank) continue;
    uint64_t last = i + 1 < range_begins_.size() ? range_begins_[i + 1] - 1
                                                 : std::numeric_limits<uint64_t>::max();
    ranges.push_back({range_begins_[i], last});
  }
  return ranges;
}

std::vector<KeySlice> ShardMap::SliceSortedKeys(absl::Span<const uint64_t> sorted_keys) const {
  std::vector<KeySlice> slices;
  size_t begin = 0;
  for (size_t r = 0; r < range_begins_.size() && begin < sorted_keys.size(); ++r) {
    size_t end = sorted_keys.size();
    if (r + 1 < range_begins_.size()) {
      end = static_cast<size_t>(
          std::lower_bound(sorted_keys.begin() + begin, sorted_keys.end(), range_begins_[r + 1]) -
          sorted_keys.begin());
    }
    if (end == begin) continue;
    if (!slices.empty() && slices.back().server_rank == range_servers_[r] &&
        slices.back().end == begin) {
      slices.back().end = end;
    } else {
      slices.push_back({range_servers_[r], begin, end});
    }
    begin = end;
  }
  return slices;
}

std::string ShardMap::DebugString() const {
  std::string out = absl::StrCat("shard map v", version_, ":");
  for (size_t i = 0; i < range_begins_.size(); ++i) {
    absl::StrAppendFormat(&out, " [%#018x..)->server %d", range_begins_[i], range_servers_[i]);
  }
  return out;
}

}  // namespace granary
