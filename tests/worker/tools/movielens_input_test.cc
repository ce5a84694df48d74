#include "worker/tools/movielens_input.h"

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/reader_input.h"

namespace granary {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class MovielensInputTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(TestTempDir()); }

  // A MovieLens folder of 2 genres, 2 users, 3 movies and the given u.data.
  static std::string WriteFolder(const std::string& ratings) {
    const std::string dir = TestTempDir();
    WritePlainFile(dir + "/u.genre", "Action|0\r\nDrama|1\r\n\r\n");  // CRLF, blank last line
    WritePlainFile(dir + "/u.user", "1|17|M|student|T8H1N\n2|56|F|other|94043\n");
    WritePlainFile(dir + "/u.item",
                   "10|A (1995)|01-Jan-1995||url|1|1\n"
                   "11|B (1977)|01-Jan-1977||url|0|0\n"
                   "12|C|||url|0|1\n");
    WritePlainFile(dir + "/u.data", ratings);
    return dir;
  }
};

TEST_F(MovielensInputTest, ReadsUsersMoviesAndRatingsAsTheOutputWantsThem) {
  absl::StatusOr<MovielensInput> input = ReadMovielens(WriteFolder("1\t10\t5\t100\n2\t12\t1\t50"));
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_THAT(input->genre_names, ElementsAre("Action", "Drama"));
  const User& first = input->users.at(1);
  EXPECT_EQ(first.age, "under18");
  EXPECT_EQ(first.zip3, "T8H");
  EXPECT_EQ(input->users.at(2).age, "56plus");
  const Movie& both = input->movies.at(10);
  EXPECT_EQ(both.genres, "Action,Drama");
  EXPECT_EQ(both.first_genre, "Action");
  EXPECT_THAT(both.genre_ids, ElementsAre(0, 1));
  EXPECT_EQ(both.year, "1995");
  EXPECT_EQ(both.release_year, 1995);
  EXPECT_EQ(input->movies.at(11).first_genre, "none");
  EXPECT_EQ(input->movies.at(11).year, "1970s");
  EXPECT_EQ(input->movies.at(12).year, "");
  EXPECT_EQ(input->movies.at(12).release_year, 0);
  ASSERT_EQ(input->ratings.size(), 2u);  // in u.data's order
  EXPECT_EQ(input->ratings[1].user, 2);
  EXPECT_EQ(input->ratings[1].movie, 12);
  EXPECT_EQ(input->ratings[1].rating, 1);
  EXPECT_EQ(input->ratings[1].timestamp, 50);
}

TEST_F(MovielensInputTest, ErrorsNameTheFileAndLine) {
  std::string dir = WriteFolder("1\t10\t5\t100\n\n1\t13\t4\t200\n");
  absl::StatusOr<MovielensInput> input = ReadMovielens(dir);
  EXPECT_TRUE(absl::IsInvalidArgument(input.status())) << input.status();
  EXPECT_THAT(input.status().message(), HasSubstr(dir + "/u.data:3: unknown movie 13"));

  dir = WriteFolder("");
  input = ReadMovielens(dir);
  EXPECT_THAT(input.status().message(), HasSubstr(dir + "/u.data: no ratings"));

  std::filesystem::remove(dir + "/u.item");
  input = ReadMovielens(dir);
  EXPECT_TRUE(absl::IsNotFound(input.status())) << input.status();
  EXPECT_THAT(input.status().message(), HasSubstr(dir + "/u.item"));
}

}  // namespace
}  // namespace granary
