#include "worker/batch_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/reader_input.h"

namespace granary {
namespace {

using ::testing::HasSubstr;

// One batch of `lines` (under kHeader), each expected to be good.
Batch ParseGoodLines(const std::vector<std::string>& lines,
                     const proto::DatasetConfig& config = Config()) {
  BatchParser parser(config, static_cast<int>(lines.size()));
  Batch batch = parser.NewBatch();
  absl::StatusOr<BatchParser::Layout> layout = parser.MatchHeader(kHeader, "test.tsv");
  EXPECT_TRUE(layout.ok()) << layout.status();
  if (!layout.ok()) return batch;
  std::string reason;
  for (const std::string& line : lines) {
    EXPECT_TRUE(parser.ParseLine(line, &*layout, &batch, &reason)) << line << ": " << reason;
  }
  return batch;
}

TEST(BatchParserTest, KeysAreHashedInTheirHashSpaces) {
  Batch batch = ParseGoodLines({Line("1", "2.5", "42", "42", "42", "42,drama,4")});
  ASSERT_EQ(batch.size, 1);
  ASSERT_EQ(batch.categoricals.size(), 2u);
  const uint64_t item_key = FeatureKey(FieldSeed("item"), "42");
  EXPECT_EQ(batch.categoricals[FindColumn(batch.categoricals, "item")].keys[0], item_key);
  // Default hash space: the column's name.
  EXPECT_EQ(batch.categoricals[FindColumn(batch.categoricals, "user")].keys[0],
            FeatureKey("user", "42"));
  EXPECT_EQ(batch.multi_categoricals[0].keys[0], FeatureKey("tags", "42"));
  // The step field shares the "item" hash space with the item column.
  const SequenceColumn& history = batch.sequences[0];
  EXPECT_EQ(history.fields[FindColumn(history.fields, "item")].keys[0], item_key);
  // A step field's default hash space is "<column>.<field>".
  EXPECT_EQ(history.fields[1].keys[0], FeatureKey("history.genre", "drama"));
  EXPECT_NE(FeatureKey("history.genre", "drama"), FeatureKey("genre", "drama"));
  EXPECT_EQ(FindColumn(batch.labels, "note"), -1);
  EXPECT_EQ(FindColumn(batch.categoricals, "note"), -1);
  EXPECT_EQ(ColumnHashSpace(Config().columns(3)), "user");
  EXPECT_EQ(StepFieldHashSpace(Config().columns(5), Config().columns(5).step_fields(1)),
            "history.genre");
}

TEST(BatchParserTest, MultiAndSequenceColumnsAreCsr) {
  Batch batch =
      ParseGoodLines({Line("1", "1", "a", "u", "x,y,z", "a,g1,1;b,g2,2"),
                      Line("0", "1", "b", "u", "", ""), Line("1", "1", "c", "u", "w", "c,g3,3")});
  ASSERT_EQ(batch.size, 3);
  const MultiCategoricalColumn& tags = batch.multi_categoricals[0];
  EXPECT_EQ(tags.offsets, (std::vector<uint32_t>{0, 3, 3, 4}));
  EXPECT_EQ(tags.keys, (std::vector<uint64_t>{FeatureKey("tags", "x"), FeatureKey("tags", "y"),
                                              FeatureKey("tags", "z"), FeatureKey("tags", "w")}));
  const SequenceColumn& history = batch.sequences[0];
  EXPECT_EQ(history.offsets, (std::vector<uint32_t>{0, 2, 2, 3}));
  EXPECT_EQ(history.Length(0), 2u);
  EXPECT_EQ(history.Length(1), 0u);
  ASSERT_EQ(history.fields.size(), 3u);
  EXPECT_EQ(history.fields[0].kind, proto::StepFieldConfig::CATEGORICAL);
  EXPECT_EQ(history.fields[0].keys,
            (std::vector<uint64_t>{FeatureKey("item", "a"), FeatureKey("item", "b"),
                                   FeatureKey("item", "c")}));
  EXPECT_TRUE(history.fields[0].values.empty());
  EXPECT_EQ(history.fields[2].kind, proto::StepFieldConfig::NUMERIC);
  EXPECT_EQ(history.fields[2].values, (std::vector<float>{1, 2, 3}));
  EXPECT_TRUE(history.fields[2].keys.empty());
}

TEST(BatchParserTest, MaxSequenceLengthKeepsTheMostRecentSteps) {
  // Steps are oldest first; max_sequence_length 3 keeps the last three.
  const std::vector<std::string> lines = {
      Line("1", "1", "a", "u", "", "s1,g,1;s2,g,2;s3,g,3;s4,g,4;s5,g,5"),
      Line("1", "1", "a", "u", "", "t1,g,1;t2,g,2;t3,g,3")};
  Batch batch = ParseGoodLines(lines);
  const SequenceColumn& history = batch.sequences[0];
  EXPECT_EQ(history.offsets, (std::vector<uint32_t>{0, 3, 6}));
  EXPECT_EQ(history.fields[0].keys[0], FeatureKey("item", "s3"));
  EXPECT_EQ(history.fields[0].keys[2], FeatureKey("item", "s5"));
  EXPECT_EQ(history.fields[2].values, (std::vector<float>{3, 4, 5, 1, 2, 3}));

  // Without a limit every step is kept.
  proto::DatasetConfig unlimited = Config();
  unlimited.mutable_columns(5)->clear_max_sequence_length();
  batch = ParseGoodLines(lines, unlimited);
  EXPECT_EQ(batch.sequences[0].offsets, (std::vector<uint32_t>{0, 5, 8}));
}

TEST(BatchParserTest, EmptyCellsAreMissing) {
  // ParseGoodLines checks that neither line is bad.
  Batch batch =
      ParseGoodLines({Line("", "", "", "", "", "", ""), Line("0", "-1.5e2", "a", "", "", "", "")});
  ASSERT_EQ(batch.size, 2);
  EXPECT_EQ(batch.labels[0].present, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(batch.labels[0].values, (std::vector<float>{0, 0}));
  EXPECT_EQ(batch.numerics[0].present, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(batch.numerics[0].values, (std::vector<float>{0, -150}));
  EXPECT_EQ(batch.categoricals[0].present, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(batch.categoricals[0].keys[0], 0u);
  EXPECT_EQ(batch.categoricals[1].present, (std::vector<uint8_t>{0, 0}));
  EXPECT_EQ(batch.multi_categoricals[0].offsets, (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_EQ(batch.sequences[0].offsets, (std::vector<uint32_t>{0, 0, 0}));
}

TEST(BatchParserTest, ABadLineLeavesTheBatchAsItWas) {
  BatchParser parser(Config(), 4);
  Batch batch = parser.NewBatch();
  absl::StatusOr<BatchParser::Layout> layout = parser.MatchHeader(kHeader, "test.tsv");
  ASSERT_TRUE(layout.ok()) << layout.status();
  std::string reason;
  ASSERT_TRUE(parser.ParseLine(NumberedLine(0), &*layout, &batch, &reason)) << reason;
  const Batch before = batch;
  // Each fails in a later column than the last, after earlier columns were appended to.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {Line("1", "x", "a", "u", "t", "a,g,1"), "column 'price': 'x' is not a finite number"},
      {Line("1", "1", "a", "u", "t,,u", "a,g,1"), "column 'tags': empty token in 't,,u'"},
      {Line("1", "1", "a", "u", "t", "a,g,1;b,g,2;c,g"),
       "column 'history': step 3 'c,g' has 2 fields, expected 3"},
      {Line("1", "1", "a", "u", "t", "a,g,1;b,g,2;c,g,3;d,g,4;e,g,nan"),
       "column 'history': step 5 field 'rating': 'nan' is not a finite number"},
  };
  for (const auto& [line, expected] : bad) {
    EXPECT_FALSE(parser.ParseLine(line, &*layout, &batch, &reason)) << line;
    EXPECT_EQ(reason, expected);
    EXPECT_TRUE(batch == before) << line;
  }
  // A long cell is quoted cut short.
  EXPECT_FALSE(parser.ParseLine(Line(std::string(100, '7') + "x", "1", "a", "u", "", ""), &*layout,
                                &batch, &reason));
  EXPECT_EQ(reason,
            absl::StrCat("column 'click': '", std::string(40, '7'), "...' is not a finite number"));
  ASSERT_TRUE(parser.ParseLine(NumberedLine(1), &*layout, &batch, &reason)) << reason;
  EXPECT_EQ(batch.size, 2);
}

TEST(BatchParserTest, HeaderColumnsMayComeInAnyOrderButMustMatchTheConfig) {
  BatchParser parser(Config(), 4);
  absl::StatusOr<BatchParser::Layout> layout =
      parser.MatchHeader("note\thistory\ttags\tuser\titem\tprice\tclick", "reordered.tsv");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->num_cells(), 7u);
  Batch batch = parser.NewBatch();
  std::string reason;
  ASSERT_TRUE(parser.ParseLine("n\t3,g,3\ta,b\tu\ti3\t3\t1", &*layout, &batch, &reason)) << reason;
  EXPECT_EQ(batch.numerics[0].values, (std::vector<float>{3}));
  EXPECT_EQ(batch.labels[0].values, (std::vector<float>{1}));

  layout = parser.MatchHeader("click\tprice\titem\ttags\thistory", "f.tsv");
  EXPECT_TRUE(absl::IsInvalidArgument(layout.status())) << layout.status();
  EXPECT_THAT(layout.status().message(),
              HasSubstr("f.tsv:1: header lacks configured columns 'note', 'user'"));
  layout = parser.MatchHeader(absl::StrCat(kHeader, "\tsurprise\tclick"), "f.tsv");
  EXPECT_THAT(layout.status().message(), HasSubstr("f.tsv:1: header names column 'click' twice"));
  layout = parser.MatchHeader(absl::StrCat(kHeader, "\tsurprise"), "f.tsv");
  EXPECT_THAT(
      layout.status().message(),
      HasSubstr("f.tsv:1: header has columns the dataset config does not name: 'surprise'"));
}

}  // namespace
}  // namespace granary
