#include "tests/testing/temp_dir.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace granary {
namespace {

// A passing test's folder goes with everything in it (e.g. a killed server's ipc folder).
TEST(TempDirTest, APassingTestsFolderIsRemovedWithItsContents) {
  const std::string dir = MakeTempDir("temp-dir-test");
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(std::filesystem::create_directories(dir + "/granary-ipc-abc123"));
  std::ofstream(dir + "/granary-ipc-abc123/server-1.sock") << "left behind";
  RemoveTempDirUnlessFailed(dir);
  EXPECT_FALSE(std::filesystem::exists(dir));
  RemoveTempDirUnlessFailed("");  // nothing made: nothing to do
}

}  // namespace
}  // namespace granary
