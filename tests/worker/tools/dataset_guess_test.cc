#include "worker/tools/dataset_guess.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

using ::testing::HasSubstr;

// The guess for `header` over `lines`, which must succeed.
DatasetGuess Guess(const std::string& header, const std::vector<std::string>& lines,
                   const DescribeOptions& options = {}) {
  absl::StatusOr<DatasetGuess> guess = GuessDataset(header, lines, "data.tsv", options);
  EXPECT_TRUE(guess.ok()) << guess.status();
  if (!guess.ok()) return {};
  absl::Status valid = ValidateDatasetConfig(guess->dataset, "guess", nullptr);
  EXPECT_TRUE(valid.ok()) << valid;
  return *guess;
}

const proto::ColumnConfig& Column(const DatasetGuess& guess, const std::string& name) {
  for (const proto::ColumnConfig& column : guess.dataset.columns()) {
    if (column.name() == name) return column;
  }
  ADD_FAILURE() << "no column " << name;
  return proto::ColumnConfig::default_instance();
}

// One column `name` whose sampled cells are `cells`, beside a label so that a guess exists.
DatasetGuess GuessColumn(const std::string& name, const std::vector<std::string>& cells) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < cells.size(); ++i) lines.push_back(absl::StrCat(i % 2, "\t", cells[i]));
  return Guess(absl::StrCat("click\t", name), lines);
}

std::vector<std::string> Repeat(const std::vector<std::string>& cells, int times) {
  std::vector<std::string> out;
  for (int t = 0; t < times; ++t) out.insert(out.end(), cells.begin(), cells.end());
  return out;
}

TEST(DatasetGuessTest, Rule1AnEmptyColumnIsIgnored) {
  DatasetGuess guess = GuessColumn("note", {"", "", ""});
  EXPECT_EQ(Column(guess, "note").role(), proto::ColumnConfig::IGNORED);
  EXPECT_THAT(guess.reasons[1], HasSubstr("note: IGNORED (no value in the 3 sampled lines)"));
}

TEST(DatasetGuessTest, Rule1ATimeIsIgnored) {
  DatasetGuess guess = GuessColumn("event_timestamp", {"874965758", "874965801", "875001234"});
  EXPECT_EQ(Column(guess, "event_timestamp").role(), proto::ColumnConfig::IGNORED);
  EXPECT_THAT(guess.reasons[1], HasSubstr("named like a time"));
}

TEST(DatasetGuessTest, Rule2LabelsByNameAndTheirHeads) {
  DatasetGuess guess = Guess("is_click\tpurchase\tpower_class\tspend_target\tscore",
                             {"0\t\t2\t1.5\t3", "1\t1\t0\t0.2\t4", "1\t0\t1\t7\t5"});
  ASSERT_EQ(guess.tasks.size(), 4u);
  EXPECT_EQ(guess.tasks[0].label_column, "is_click");
  EXPECT_EQ(guess.tasks[0].head, proto::TaskConfig::BINARY);
  // Empty where the label is unobservable (no click): still a BINARY label.
  EXPECT_EQ(guess.tasks[1].head, proto::TaskConfig::BINARY);
  EXPECT_THAT(guess.reasons[1], HasSubstr("empty in 1 of the lines"));
  EXPECT_EQ(guess.tasks[2].head, proto::TaskConfig::MULTICLASS);
  EXPECT_EQ(guess.tasks[2].num_classes, 3u);
  EXPECT_EQ(guess.tasks[3].head, proto::TaskConfig::REGRESSION);
  // "score" is no label word: a feature; nor is "liked", which names features as often.
  EXPECT_NE(Column(guess, "score").role(), proto::ColumnConfig::LABEL);
  EXPECT_EQ(Column(GuessColumn("history_liked", {"0.5", "0.25", "1"}), "history_liked").role(),
            proto::ColumnConfig::NUMERIC);
  // A label-named column of tokens is not a label.
  EXPECT_EQ(Column(GuessColumn("label_text", {"a", "b"}), "label_text").role(),
            proto::ColumnConfig::CATEGORICAL);
}

TEST(DatasetGuessTest, Rule2ListedLabelsReplaceTheNameRule) {
  DescribeOptions options;
  options.label_columns = {"bought_it"};
  DatasetGuess guess = Guess("click\tbought_it", {"0\t1", "1\t0", "1\t1"}, options);
  ASSERT_EQ(guess.tasks.size(), 1u);
  EXPECT_EQ(guess.tasks[0].label_column, "bought_it");
  EXPECT_EQ(Column(guess, "click").role(), proto::ColumnConfig::CATEGORICAL);

  options.label_columns = {"nope"};
  absl::StatusOr<DatasetGuess> unknown = GuessDataset("click", {"1"}, "data.tsv", options);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("data.tsv:1: label column 'nope' is not in the header"));
  options.label_columns = {"click"};
  absl::StatusOr<DatasetGuess> tokens = GuessDataset("click", {"yes"}, "data.tsv", options);
  EXPECT_THAT(tokens.status().message(),
              HasSubstr("label column 'click' holds a value that is not a number"));
}

TEST(DatasetGuessTest, Rule3SequencesShareKeysWithTheColumnTheirTokensAppearIn) {
  DatasetGuess guess = Guess("click\titem\thistory",
                             {"1\ti1\ti1,3.5;i2,4", "0\ti2\ti2,1", "1\ti3\t", "0\ti1\ti9,2;i3,1"});
  const proto::ColumnConfig& history = Column(guess, "history");
  ASSERT_EQ(history.role(), proto::ColumnConfig::SEQUENCE);
  ASSERT_EQ(history.step_fields_size(), 2);
  // 4 of the 5 step tokens are items of the 'item' column.
  EXPECT_EQ(history.step_fields(0).kind(), proto::StepFieldConfig::CATEGORICAL);
  EXPECT_EQ(history.step_fields(0).name(), "item");
  EXPECT_EQ(history.step_fields(0).hash_space(), "item");
  EXPECT_EQ(Column(guess, "item").hash_space(), "item");
  EXPECT_EQ(history.step_fields(1).kind(), proto::StepFieldConfig::NUMERIC);
  // Integer ids in the steps are the id column's keys, not numbers.
  DatasetGuess ids = Guess("click\tmovie\thistory", {"1\t242\t242,4;302,3", "0\t302\t51,1"});
  EXPECT_EQ(Column(ids, "history").step_fields(0).kind(), proto::StepFieldConfig::CATEGORICAL);
  EXPECT_EQ(Column(ids, "history").step_fields(0).hash_space(), "movie");
  EXPECT_EQ(Column(ids, "history").step_fields(1).kind(), proto::StepFieldConfig::NUMERIC);
  // Steps of differing field counts cannot be read as a sequence.
  DatasetGuess ragged = GuessColumn("steps", {"a,b;c", "d"});
  EXPECT_EQ(Column(ragged, "steps").role(), proto::ColumnConfig::IGNORED);
  EXPECT_THAT(ragged.reasons[1], HasSubstr("have 1 to 2 fields"));
}

TEST(DatasetGuessTest, Rule4CommasMakeAList) {
  EXPECT_EQ(Column(GuessColumn("tags", {"a,b", "c", ""}), "tags").role(),
            proto::ColumnConfig::MULTI_CATEGORICAL);
}

TEST(DatasetGuessTest, Rule5IdsAreCategoricalEvenWhenNumeric) {
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(absl::StrCat(1000 + i * 37));
  EXPECT_EQ(Column(GuessColumn("user_id", ids), "user_id").role(),
            proto::ColumnConfig::CATEGORICAL);
  EXPECT_EQ(Column(GuessColumn("userId", ids), "userId").role(), proto::ColumnConfig::CATEGORICAL);
  EXPECT_EQ(Column(GuessColumn("amount", ids), "amount").role(), proto::ColumnConfig::NUMERIC);
}

TEST(DatasetGuessTest, Rule6FewIntegersAreCategories) {
  std::vector<std::string> hours;
  for (int i = 0; i < 200; ++i) hours.push_back(absl::StrCat(i % 24));
  EXPECT_EQ(Column(GuessColumn("hour", hours), "hour").role(), proto::ColumnConfig::CATEGORICAL);
  std::vector<std::string> counts;
  for (int i = 0; i < 200; ++i) counts.push_back(absl::StrCat(i));
  EXPECT_EQ(Column(GuessColumn("count", counts), "count").role(), proto::ColumnConfig::NUMERIC);
}

TEST(DatasetGuessTest, Rule7SkewedNonNegativeNumbersGetLog1pThenStandardization) {
  // Heavy tail: mostly small, a few huge.
  DatasetGuess skewed = GuessColumn(
      "price", Repeat({"0.5", "1.5", "2.5", "1.25", "3.5", "0.75", "2.25", "1000.5"}, 10));
  const proto::ColumnConfig& price = Column(skewed, "price");
  ASSERT_EQ(price.role(), proto::ColumnConfig::NUMERIC);
  EXPECT_TRUE(price.transform().log1p());
  double mean = 0;
  for (double v : {0.5, 1.5, 2.5, 1.25, 3.5, 0.75, 2.25, 1000.5}) mean += std::log1p(v) / 8;
  EXPECT_NEAR(price.transform().mean(), mean, 1e-9);
  EXPECT_GT(price.transform().stddev(), 0);
  EXPECT_EQ(price.transform().clip(), kStandardizedClip);

  // Symmetric: standardized without log1p.
  const proto::ColumnConfig& centred =
      Column(GuessColumn("temp", Repeat({"-1.5", "0.5", "1.5", "-0.5"}, 10)), "temp");
  ASSERT_EQ(centred.role(), proto::ColumnConfig::NUMERIC);
  EXPECT_FALSE(centred.transform().log1p());
  EXPECT_NEAR(centred.transform().mean(), 0, 1e-12);
  EXPECT_NEAR(centred.transform().stddev(), std::sqrt(1.25), 1e-12);

  // Skewed but with negatives: no log1p.
  EXPECT_FALSE(Column(GuessColumn("delta", Repeat({"-0.5", "0.5", "0.25", "900.5"}, 10)), "delta")
                   .transform()
                   .log1p());

  // A constant carries nothing.
  EXPECT_EQ(Column(GuessColumn("const", Repeat({"2.5"}, 10)), "const").role(),
            proto::ColumnConfig::IGNORED);
}

TEST(DatasetGuessTest, Rule7LargeValuesRaiseMaxAbsNumeric) {
  DatasetGuess guess = GuessColumn("bytes", Repeat({"1.5", "2e5", "3.5e4"}, 5));
  EXPECT_EQ(guess.dataset.max_abs_numeric(), 2e5 * kMaxAbsNumericHeadroom);
  EXPECT_FALSE(GuessColumn("small", Repeat({"1.5", "2.5"}, 5)).dataset.has_max_abs_numeric());
}

TEST(DatasetGuessTest, Rule8TokensAreCategorical) {
  EXPECT_EQ(Column(GuessColumn("city", {"paris", "rome", "3"}), "city").role(),
            proto::ColumnConfig::CATEGORICAL);
}

TEST(DatasetGuessTest, BadHeadersAndLinesAreNamed) {
  EXPECT_THAT(GuessDataset("a\ta", {"1\t2"}, "x.tsv", {}).status().message(),
              HasSubstr("x.tsv:1: header names column 'a' twice"));
  EXPECT_THAT(GuessDataset("a\t\tb", {"1\t2\t3"}, "x.tsv", {}).status().message(),
              HasSubstr("x.tsv:1: header has an empty name"));
  EXPECT_THAT(GuessDataset("a\tb", {"1", "2"}, "x.tsv", {}).status().message(),
              HasSubstr("x.tsv: none of the 2 sampled lines has the header's 2 cells"));
  DatasetGuess guess = Guess("click\tb", {"1\t2.5", "0", "1\t3.5"});
  EXPECT_THAT(guess.reasons.back(), HasSubstr("1 of the 3 sampled lines lack the header's 2"));
}

}  // namespace
}  // namespace granary
