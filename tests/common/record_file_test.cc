#include "common/record_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/proto/delta.pb.h"
#include "google/protobuf/util/delimited_message_util.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace granary {
namespace {

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

proto::DeltaFooter Footer(uint64_t blocks) {
  proto::DeltaFooter footer;
  footer.set_blocks(blocks);
  footer.set_rows(blocks * 1000);
  return footer;
}

class RecordFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("record_file_test");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/records";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteThree() {
    absl::StatusOr<std::unique_ptr<RecordWriter>> writer = RecordWriter::Create(path_);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE((*writer)->Write(Footer(i)).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
  }

  // Reads records until the end or an error; the error, or OK and the records read.
  absl::Status ReadAll(std::vector<proto::DeltaFooter>* records) {
    absl::StatusOr<std::unique_ptr<RecordReader>> reader = RecordReader::Open(path_, "test file");
    if (!reader.ok()) return reader.status();
    while (true) {
      proto::DeltaFooter record;
      absl::StatusOr<bool> read = (*reader)->Read(&record);
      if (!read.ok()) return read.status();
      if (!*read) return absl::OkStatus();
      records->push_back(record);
    }
  }

  void WriteBytes(const std::string& bytes) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(RecordFileTest, RoundTripsAndEndsCleanly) {
  WriteThree();
  std::vector<proto::DeltaFooter> records;
  ASSERT_TRUE(ReadAll(&records).ok());
  ASSERT_EQ(records.size(), 3u);
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(records[i - 1].blocks(), i);
    EXPECT_EQ(records[i - 1].rows(), i * 1000);
  }
  EXPECT_FALSE(std::filesystem::exists(TemporaryPathOf(path_)));
}

// Files written before this module existed must still read: the layout is Protobuf's
// delimited format and nothing else.
TEST_F(RecordFileTest, WritesExactlyProtobufsDelimitedFormat) {
  WriteThree();
  std::ostringstream expected;
  for (uint64_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(google::protobuf::util::SerializeDelimitedToOstream(Footer(i), &expected));
  }
  EXPECT_EQ(Contents(path_), expected.str());
}

TEST_F(RecordFileTest, PublishesOnlyOnFinish) {
  WriteBytes("old");
  {
    absl::StatusOr<std::unique_ptr<RecordWriter>> writer = RecordWriter::Create(path_);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Write(Footer(1)).ok());
    EXPECT_EQ(Contents(path_), "old");
  }
  EXPECT_EQ(Contents(path_), "old");
  EXPECT_FALSE(std::filesystem::exists(TemporaryPathOf(path_)));
}

TEST_F(RecordFileTest, RejectsATruncatedRecordNamingFileAndRecord) {
  WriteThree();
  std::string bytes = Contents(path_);
  WriteBytes(bytes.substr(0, bytes.size() - 2));
  std::vector<proto::DeltaFooter> records;
  absl::Status status = ReadAll(&records);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find(path_ + ", record 2"), std::string::npos) << status;
  EXPECT_EQ(records.size(), 2u);
}

TEST_F(RecordFileTest, RejectsLengthsBeyondTheFileOrTheLimitBeforeAllocating) {
  // A varint32 length of 2^31 - 1: within the limit but far beyond the 3 bytes that follow.
  WriteBytes(
      std::string("\xff\xff\xff\xff\x07"
                  "abc",
                  8));
  std::vector<proto::DeltaFooter> records;
  absl::Status status = ReadAll(&records);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find("bytes left in the file"), std::string::npos) << status;
  // A varint32 length of 2^32 - 1: beyond kMaxRecordBytes.
  WriteBytes(
      std::string("\xff\xff\xff\xff\x0f"
                  "abc",
                  8));
  status = ReadAll(&records);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_NE(status.message().find("record 0"), std::string::npos) << status;
}

TEST_F(RecordFileTest, RejectsAnUnparsableRecord) {
  WriteBytes(std::string("\x02\xff\xff", 3));
  std::vector<proto::DeltaFooter> records;
  absl::Status status = ReadAll(&records);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
}

TEST_F(RecordFileTest, EmptyFileHasNoRecordsAndAMissingOneIsNotFound) {
  WriteBytes("");
  std::vector<proto::DeltaFooter> records;
  EXPECT_TRUE(ReadAll(&records).ok());
  EXPECT_TRUE(records.empty());
  path_ += ".missing";
  EXPECT_TRUE(absl::IsNotFound(ReadAll(&records)));
}

TEST(RawArrayTest, RoundTripsAndRejectsAPartialElement) {
  std::string bytes;
  const std::vector<uint64_t> keys = {1, 2ull << 40, ~0ull};
  AppendRawArray(absl::MakeConstSpan(keys), &bytes);
  EXPECT_EQ(bytes.size(), 3 * sizeof(uint64_t));
  std::vector<uint64_t> decoded = {7};
  ASSERT_TRUE(AppendDecodedArray(bytes, &decoded));
  EXPECT_EQ(decoded, (std::vector<uint64_t>{7, 1, 2ull << 40, ~0ull}));
  bytes.pop_back();
  EXPECT_FALSE(AppendDecodedArray(bytes, &decoded));
  EXPECT_EQ(decoded.size(), 4u);
}

}  // namespace
}  // namespace granary
