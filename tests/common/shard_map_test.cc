#include "common/shard_map.h"

#include <limits>

#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

TEST(ShardMapTest, EvenSplitCoversTheKeySpaceContiguously) {
  for (int servers : {1, 2, 3, 7}) {
    ShardMap map = ShardMap::EvenSplit(servers, 5);
    EXPECT_EQ(map.version(), 5u);
    EXPECT_EQ(map.num_servers(), servers);
    uint64_t next = 0;
    for (int s = 0; s < servers; ++s) {
      std::vector<KeyRange> ranges = map.RangesOf(s);
      ASSERT_EQ(ranges.size(), 1u);
      EXPECT_EQ(ranges[0].first, next);
      EXPECT_EQ(map.ServerForKey(ranges[0].first), s);
      EXPECT_EQ(map.ServerForKey(ranges[0].last), s);
      next = ranges[0].last + 1;
    }
    EXPECT_EQ(map.RangesOf(servers - 1).back().last, kMax);
  }
}

TEST(ShardMapTest, ServerForKeyAtBoundaries) {
  ShardMap map = ShardMap::EvenSplit(2, 1);
  EXPECT_EQ(map.ServerForKey(0), 0);
  EXPECT_EQ(map.ServerForKey((1ULL << 63) - 1), 0);
  EXPECT_EQ(map.ServerForKey(1ULL << 63), 1);
  EXPECT_EQ(map.ServerForKey(kMax), 1);
}

TEST(ShardMapTest, ProtoRoundTrip) {
  ShardMap map = ShardMap::EvenSplit(3, 9);
  absl::StatusOr<ShardMap> copy = ShardMap::FromProto(map.ToProto());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->version(), 9u);
  EXPECT_EQ(copy->DebugString(), map.DebugString());
}

TEST(ShardMapTest, RejectsMalformedProtos) {
  proto::ShardMapProto empty;
  EXPECT_FALSE(ShardMap::FromProto(empty).ok());

  proto::ShardMapProto not_from_zero;
  not_from_zero.add_ranges()->set_begin(5);
  EXPECT_FALSE(ShardMap::FromProto(not_from_zero).ok());

  proto::ShardMapProto unordered;
  unordered.add_ranges()->set_begin(0);
  unordered.add_ranges()->set_begin(0);
  absl::StatusOr<ShardMap> status = ShardMap::FromProto(unordered);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.status().message().find("range 1"), std::string::npos);

  proto::ShardMapProto negative;
  proto::ShardRange* range = negative.add_ranges();
  range->set_begin(0);
  range->set_server_rank(-1);
  EXPECT_FALSE(ShardMap::FromProto(negative).ok());
}

TEST(ShardMapTest, SliceSortedKeysGroupsRunsByServer) {
  // Server 0 owns [0, 100) and [300, 2^64); server 1 owns [100, 300).
  proto::ShardMapProto proto;
  proto.set_version(1);
  auto add = [&](uint64_t begin, int server) {
    proto::ShardRange* range = proto.add_ranges();
    range->set_begin(begin);
    range->set_server_rank(server);
  };
  add(0, 0);
  add(100, 1);
  add(300, 0);
  absl::StatusOr<ShardMap> map = ShardMap::FromProto(proto);
  ASSERT_TRUE(map.ok());
  std::vector<uint64_t> keys = {1, 50, 100, 299, 300, kMax};
  std::vector<KeySlice> slices = map->SliceSortedKeys(keys);
  ASSERT_EQ(slices.size(), 3u);
  EXPECT_EQ(slices[0].server_rank, 0);
  EXPECT_EQ(slices[0].begin, 0u);
  EXPECT_EQ(slices[0].end, 2u);
  EXPECT_EQ(slices[1].server_rank, 1);
  EXPECT_EQ(slices[1].begin, 2u);
  EXPECT_EQ(slices[1].end, 4u);
  EXPECT_EQ(slices[2].server_rank, 0);
  EXPECT_EQ(slices[2].begin, 4u);
  EXPECT_EQ(slices[2].end, 6u);
  EXPECT_EQ(map->RangesOf(0).size(), 2u);
  EXPECT_TRUE(map->SliceSortedKeys({}).empty());
}

TEST(ShardMapTest, SliceSkipsServersWithoutKeys) {
  ShardMap map = ShardMap::EvenSplit(4, 1);
  std::vector<uint64_t> keys = {1, 2, kMax};
  std::vector<KeySlice> slices = map.SliceSortedKeys(keys);
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[0].server_rank, 0);
  EXPECT_EQ(slices[1].server_rank, 3);
  EXPECT_EQ(slices[1].begin, 2u);
}

}  // namespace
}  // namespace granary
