#include "common/vector_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

class VectorFileTest : public ::testing::Test {
 protected:
  // ctest runs tests in parallel: every test gets its own file.
  std::string Path() const {
    return absl::StrCat(::testing::TempDir(), "/vector_file_test-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".vec");
  }
  void TearDown() override { std::filesystem::remove(Path()); }

  void WriteThree() {
    proto::VectorFileHeader header;
    header.set_kind(proto::VectorFileHeader::ITEM);
    header.set_dim(2);
    header.set_source("test");
    absl::StatusOr<std::unique_ptr<VectorFileWriter>> writer =
        VectorFileWriter::Create(Path(), header);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (uint64_t key = 1; key <= 3; ++key) {
      const std::vector<float> values = {static_cast<float>(key), -0.5f * key};
      ASSERT_TRUE((*writer)->Add(key << 40, values).ok());
    }
    ASSERT_TRUE((*writer)->Finish().ok());
  }
};

TEST_F(VectorFileTest, RoundTrips) {
  WriteThree();
  absl::StatusOr<VectorSet> set = ReadVectorFile(Path());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->header.format(), kVectorFormat);
  EXPECT_EQ(set->header.kind(), proto::VectorFileHeader::ITEM);
  EXPECT_EQ(set->header.dim(), 2u);
  EXPECT_EQ(set->header.source(), "test");
  EXPECT_EQ(set->keys, (std::vector<uint64_t>{1ull << 40, 2ull << 40, 3ull << 40}));
  EXPECT_EQ(set->values, (std::vector<float>{1, -0.5f, 2, -1, 3, -1.5f}));
}

TEST_F(VectorFileTest, RejectsAVectorOfTheWrongWidth) {
  proto::VectorFileHeader header;
  header.set_dim(3);
  absl::StatusOr<std::unique_ptr<VectorFileWriter>> writer =
      VectorFileWriter::Create(Path(), header);
  ASSERT_TRUE(writer.ok());
  const std::vector<float> values = {1, 2};
  absl::Status status = (*writer)->Add(7, values);
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("key 7"), std::string::npos) << status;
  header.set_dim(0);
  EXPECT_TRUE(absl::IsInvalidArgument(VectorFileWriter::Create(Path(), header).status()));
}

TEST_F(VectorFileTest, RejectsATruncatedFile) {
  WriteThree();
  const auto size = std::filesystem::file_size(Path());
  std::filesystem::resize_file(Path(), size - 3);  // into the footer
  absl::StatusOr<VectorSet> set = ReadVectorFile(Path());
  EXPECT_TRUE(absl::IsDataLoss(set.status())) << set.status();
  EXPECT_NE(set.status().message().find(Path()), std::string::npos);
}

TEST_F(VectorFileTest, RejectsAFileThatIsNotAVectorFile) {
  std::ofstream(Path()) << "click\tuser_id\n1\t2\n";
  EXPECT_TRUE(absl::IsDataLoss(ReadVectorFile(Path()).status()));
  EXPECT_TRUE(absl::IsNotFound(ReadVectorFile(Path() + ".missing").status()));
}

}  // namespace
}  // namespace granary
