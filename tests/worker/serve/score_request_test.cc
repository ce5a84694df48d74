#include "worker/serve/score_request.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

proto::DatasetConfig Dataset() {
  proto::DatasetConfig dataset;
  EXPECT_TRUE(ParseTextProto(R"(
    columns { name: "click" role: LABEL }
    columns { name: "user" role: CATEGORICAL }
    columns { name: "note" role: IGNORED }
    columns { name: "genres" role: MULTI_CATEGORICAL }
    columns { name: "item" role: CATEGORICAL }
  )",
                             "dataset", &dataset)
                  .ok());
  return dataset;
}

constexpr int kMaxCandidates = 3;

// The error message of parsing `body`, or "" if it parsed.
std::string ErrorOf(const std::string& body) {
  const ScoreRequestParser parser(Dataset(), kMaxCandidates);
  absl::StatusOr<std::vector<std::string>> lines = parser.Parse(body);
  if (lines.ok()) return "";
  EXPECT_TRUE(absl::IsInvalidArgument(lines.status())) << lines.status();
  return std::string(lines.status().message());
}

TEST(ScoreRequestParserTest, RepeatsTheUsersColumnsInOneLinePerCandidateInDatasetOrder) {
  const ScoreRequestParser parser(Dataset(), kMaxCandidates);
  EXPECT_EQ(parser.header(), "click\tuser\tnote\tgenres\titem");
  absl::StatusOr<std::vector<std::string>> lines = parser.Parse(
      R"({"user": {"user": "7", "genres": "a,b"}, "candidates": [{"item": "50"}, {}]})");
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(*lines, (std::vector<std::string>{"\t7\t\ta,b\t50", "\t7\t\ta,b\t"}));
}

TEST(ScoreRequestParserTest, RefusesWhatIsNotAnInputColumnAndNamesIt) {
  EXPECT_TRUE(absl::StrContains(ErrorOf(R"({"user": {"usr": "7"}, "candidates": [{}]})"),
                                "user: unknown column 'usr'"));
  EXPECT_TRUE(absl::StrContains(ErrorOf(R"({"candidates": [{}, {"click": "1"}]})"),
                                "candidate 1: column 'click' is a label"));
  EXPECT_TRUE(absl::StrContains(ErrorOf(R"({"candidates": [{"note": "x"}]})"),
                                "column 'note' is ignored by the model"));
  EXPECT_TRUE(
      absl::StrContains(ErrorOf(R"({"user": {"item": "1"}, "candidates": [{"item": "2"}]})"),
                        "candidate 0: column 'item' is given by the user too"));
  EXPECT_TRUE(absl::StrContains(ErrorOf(R"({"candidates": [{"item": "1\t2"}]})"),
                                "holds a tab or line break"));
  EXPECT_TRUE(
      absl::StrContains(ErrorOf(R"({"candidates": [{"item": ["1"]}]})"), "'item' is not a string"));
}

TEST(ScoreRequestParserTest, RefusesMalformedBodiesAndCandidateCountsOutOfBounds) {
  EXPECT_TRUE(absl::StrContains(ErrorOf(R"({"users": {}, "candidates": [{}]})"), "users"));
  EXPECT_TRUE(absl::StrContains(ErrorOf(R"({"user": {"user": 7}, "candidates": [{}]})"),
                                "not a score request"));
  EXPECT_TRUE(absl::StrContains(ErrorOf("[1, 2"), "not a score request"));
  EXPECT_EQ(ErrorOf(R"({"user": {}})"), "the request has no candidates");
  EXPECT_EQ(
      ErrorOf(R"({"candidates": [{}, {}, {}, {}]})"),
      absl::StrCat("the request has 4 candidates, more than --max_candidates=", kMaxCandidates));
  EXPECT_EQ(ErrorOf(R"({"candidates": [{}, {}, {}]})"), "");
}

}  // namespace
}  // namespace granary

namespace granary {
namespace {

TEST(ScoreRequestParserTest, ATopKRequestIsTheUsersLineAndABoundedK) {
  const ScoreRequestParser parser(Dataset(), kMaxCandidates);
  absl::StatusOr<ScoreRequestParser::UserQuery> query =
      parser.ParseTopK(R"({"user": {"user": "7"}, "k": 2})");
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(query->line, "\t7\t\t\t");
  EXPECT_EQ(query->k, 2);
  query = parser.ParseTopK(R"({"user": {"user": "7"}, "k": 4})");
  ASSERT_FALSE(query.ok());
  EXPECT_EQ(query.status().message(), "k is 4, not in [1, --max_candidates=3]");
  query = parser.ParseTopK(R"({"user": {"itm": "7"}, "k": 1})");
  ASSERT_FALSE(query.ok());
  EXPECT_EQ(query.status().message(), "user: unknown column 'itm'");
}

}  // namespace
}  // namespace granary

namespace granary {
namespace {

TEST(ScoreRequestParserTest, TheColumnarFormGivesTheSameLinesAsTheRowForm) {
  const ScoreRequestParser parser(Dataset(), kMaxCandidates);
  absl::StatusOr<std::vector<std::string>> rows = parser.Parse(
      R"({"user": {"user": "7"}, "candidates": [{"item": "50", "genres": "a,b"}, {"item": "51"}]})");
  absl::StatusOr<std::vector<std::string>> columns = parser.Parse(
      R"({"user": {"user": "7"},
          "candidate_columns": {"item": {"values": ["50", "51"]}, "genres": {"values": ["a,b", ""]}}})");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_TRUE(columns.ok()) << columns.status();
  EXPECT_EQ(*columns, (std::vector<std::string>{"\t7\t\ta,b\t50", "\t7\t\t\t51"}));
  EXPECT_EQ(*columns, *rows);
}

TEST(ScoreRequestParserTest, RefusesColumnarRequestsThatDoNotHoldOneValuePerCandidate) {
  EXPECT_EQ(
      ErrorOf(
          R"({"candidate_columns": {"item": {"values": ["1", "2"]}, "genres": {"values": ["a"]}}})"),
      "candidate column 'genres' has 1 values, not one per candidate (2, the longest "
      "column's)");
  EXPECT_EQ(ErrorOf(R"({"candidates": [{}], "candidate_columns": {"item": {"values": ["1"]}}})"),
            "the request gives both candidates and candidate_columns; give one");
  EXPECT_EQ(ErrorOf(R"({"candidate_columns": {"item": {"values": []}}})"),
            "the request has no candidates");
  EXPECT_EQ(
      ErrorOf(R"({"candidate_columns": {"item": {"values": ["1", "2", "3", "4"]}}})"),
      absl::StrCat("the request has 4 candidates, more than --max_candidates=", kMaxCandidates));
  EXPECT_EQ(ErrorOf(R"({"candidate_columns": {"itm": {"values": ["1"]}}})"),
            "candidate column 'itm': unknown column 'itm'");
  EXPECT_EQ(ErrorOf(R"({"candidate_columns": {"click": {"values": ["1"]}}})"),
            "candidate column 'click': column 'click' is a label, not an input");
  EXPECT_EQ(ErrorOf(R"({"user": {"item": "1"}, "candidate_columns": {"item": {"values": ["2"]}}})"),
            "candidate column 'item': column 'item' is given by the user too");
  EXPECT_EQ(ErrorOf(R"({"candidate_columns": {"item": {"values": ["1", "2\n"]}}})"),
            "candidate column 'item': value 1 holds a tab or line break");
  EXPECT_TRUE(absl::StrContains(ErrorOf(R"({"candidate_columns": {"item": {"values": [1]}}})"),
                                "not a score request"));
  EXPECT_EQ(ErrorOf(R"({"candidate_columns": {"item": {"values": ["1", "2", "3"]}}})"), "");
}

}  // namespace
}  // namespace granary
