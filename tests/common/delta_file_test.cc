#include "common/delta_file.h"

#include <filesystem>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

class DeltaFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("delta_file_test");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/server-0.delta";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

TEST_F(DeltaFileTest, RoundTripsRowsAndTombstonesOfSeveralTables) {
  proto::DeltaHeader header;
  header.set_server_rank(2);
  header.set_since_version(5);
  header.set_until_version(9);
  absl::StatusOr<std::unique_ptr<DeltaWriter>> writer = DeltaWriter::Create(path_, header);
  ASSERT_TRUE(writer.ok()) << writer.status();
  const std::vector<float> a = {1, 2}, b = {3, 4, 5};
  ASSERT_TRUE((*writer)->AddRow("user", 2, 11, a.data()).ok());
  ASSERT_TRUE((*writer)->AddTombstone("user", 2, 12).ok());
  ASSERT_TRUE((*writer)->AddRow("item", 3, 21, b.data()).ok());
  EXPECT_FALSE(std::filesystem::exists(path_));
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_EQ((*writer)->rows(), 2u);
  EXPECT_EQ((*writer)->tombstones(), 1u);
  EXPECT_FALSE(std::filesystem::exists(TemporaryPathOf(path_)));

  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->header().format(), kDeltaFormat);
  EXPECT_EQ((*reader)->header().server_rank(), 2);
  EXPECT_EQ((*reader)->header().until_version(), 9u);
  DeltaTableBlock block;
  absl::StatusOr<bool> more = (*reader)->Next(&block);
  ASSERT_TRUE(more.ok() && *more) << more.status();
  EXPECT_EQ(block.table, "user");
  EXPECT_EQ(block.dim, 2);
  EXPECT_EQ(block.keys, std::vector<uint64_t>{11});
  EXPECT_EQ(block.values, a);
  EXPECT_EQ(block.tombstones, std::vector<uint64_t>{12});
  more = (*reader)->Next(&block);
  ASSERT_TRUE(more.ok() && *more) << more.status();
  EXPECT_EQ(block.table, "item");
  EXPECT_EQ(block.keys, std::vector<uint64_t>{21});
  EXPECT_EQ(block.values, b);
  EXPECT_TRUE(block.tombstones.empty());
  more = (*reader)->Next(&block);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_FALSE(*more);
}

// Found by fuzz/delta_file_fuzzer.cc: a block of no rows whose dim does not fit
// DeltaTableBlock::dim (an int) was read with dim -1.
TEST_F(DeltaFileTest, ABlockWithADimBeyondIntIsMalformed) {
  absl::StatusOr<std::unique_ptr<RecordWriter>> records = RecordWriter::Create(path_);
  ASSERT_TRUE(records.ok()) << records.status();
  proto::DeltaRecord record;
  record.mutable_header()->set_format(kDeltaFormat);
  ASSERT_TRUE((*records)->Write(record).ok());
  record.Clear();
  record.mutable_block()->set_table("dense");
  record.mutable_block()->set_dim(0xffffffffu);
  ASSERT_TRUE((*records)->Write(record).ok());
  record.Clear();
  record.mutable_footer()->set_blocks(1);
  ASSERT_TRUE((*records)->Write(record).ok());
  ASSERT_TRUE((*records)->Finish().ok());

  absl::StatusOr<std::unique_ptr<DeltaReader>> reader = DeltaReader::Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  DeltaTableBlock block;
  absl::StatusOr<bool> more = (*reader)->Next(&block);
  ASSERT_FALSE(more.ok()) << "read a block of dim " << block.dim;
  EXPECT_EQ(more.status().code(), absl::StatusCode::kDataLoss) << more.status();
  EXPECT_NE(more.status().message().find("malformed block of table 'dense'"), std::string::npos)
      << more.status();
}

TEST_F(DeltaFileTest, AnUnfinishedWriterLeavesNoFile) {
  {
    absl::StatusOr<std::unique_ptr<DeltaWriter>> writer =
        DeltaWriter::Create(path_, proto::DeltaHeader());
    ASSERT_TRUE(writer.ok()) << writer.status();
    const float values[1] = {1};
    ASSERT_TRUE((*writer)->AddRow("user", 1, 1, values).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_FALSE(std::filesystem::exists(TemporaryPathOf(path_)));
}

}  // namespace
}  // namespace granary
