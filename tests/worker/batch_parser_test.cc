#include "worker/batch_parser.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
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

  // Unset, max_sequence_length is kDefaultMaxSequenceLength.
  proto::DatasetConfig unset = Config();
  unset.mutable_columns(5)->clear_max_sequence_length();
  batch = ParseGoodLines(lines, unset);
  EXPECT_EQ(batch.sequences[0].offsets, (std::vector<uint32_t>{0, 5, 8}));
  std::vector<std::string> steps(kDefaultMaxSequenceLength + 2, "s,g,1");
  batch = ParseGoodLines({Line("1", "1", "a", "u", "", absl::StrJoin(steps, ";"))}, unset);
  EXPECT_EQ(batch.sequences[0].offsets, (std::vector<uint32_t>{0, kDefaultMaxSequenceLength}));
}

// Parses `line` under kHeader with `parser`, expecting it bad; returns the reason and checks
// that the batch is unchanged.
std::string BadLineReason(const BatchParser& parser, const std::string& line) {
  Batch batch = parser.NewBatch();
  absl::StatusOr<BatchParser::Layout> layout = parser.MatchHeader(kHeader, "test.tsv");
  EXPECT_TRUE(layout.ok()) << layout.status();
  if (!layout.ok()) return "";
  std::string reason;
  EXPECT_TRUE(parser.ParseLine(NumberedLine(0), &*layout, &batch, &reason)) << reason;
  const Batch before = batch;
  EXPECT_FALSE(parser.ParseLine(line, &*layout, &batch, &reason)) << line;
  EXPECT_TRUE(batch == before) << line;
  return reason;
}

TEST(BatchParserTest, ACellOfMoreThanMaxSequenceStepsIsBad) {
  proto::DatasetConfig config = Config();
  config.mutable_columns(5)->set_max_sequence_steps(4);
  BatchParser parser(config, 4);
  EXPECT_EQ(BadLineReason(parser, Line("1", "1", "a", "u", "", "a,g,1;b,g,2;c,g,3;d,g,4;e,g,5")),
            "column 'history': more than max_sequence_steps 4 steps");
  // Counted before any step is parsed: a malformed step past the bound is not what is reported.
  std::string absurd = absl::StrCat(std::string(100000, ';'), "x");
  EXPECT_EQ(BadLineReason(parser, Line("1", "1", "a", "u", "", absurd)),
            "column 'history': more than max_sequence_steps 4 steps");
  // Unset, the bound is kDefaultMaxSequenceSteps.
  EXPECT_EQ(BadLineReason(BatchParser(Config(), 4), Line("1", "1", "a", "u", "", absurd)),
            absl::StrCat("column 'history': more than max_sequence_steps ",
                         kDefaultMaxSequenceSteps, " steps"));
  Batch batch = ParseGoodLines({Line("1", "1", "a", "u", "", "a,g,1;b,g,2;c,g,3;d,g,4")}, config);
  EXPECT_EQ(batch.sequences[0].offsets, (std::vector<uint32_t>{0, 3}));
}

TEST(BatchParserTest, ANumericBeyondMaxAbsNumericIsBad) {
  BatchParser parser(Config(), 4);
  EXPECT_EQ(BadLineReason(parser, Line("1", "3e38", "a", "u", "", "")),
            "column 'price': 3e+38 exceeds max_abs_numeric 1e+06");
  EXPECT_EQ(BadLineReason(parser, Line("1", "-1000001", "a", "u", "", "")),
            "column 'price': -1e+06 exceeds max_abs_numeric 1e+06");
  EXPECT_EQ(BadLineReason(parser, Line("1", "1", "a", "u", "", "a,g,1;b,g,2e6")),
            "column 'history': step 2 field 'rating': 2e+06 exceeds max_abs_numeric 1e+06");
  // The bound itself is allowed; labels are held to their domains, not to max_abs_numeric.
  Batch batch = ParseGoodLines({Line("2e6", "-1e6", "a", "u", "", "a,g,1e6")});
  EXPECT_EQ(batch.numerics[0].values, (std::vector<float>{-1e6f}));

  proto::DatasetConfig config = Config();
  config.set_max_abs_numeric(10);
  EXPECT_EQ(BadLineReason(BatchParser(config, 4), Line("1", "10.5", "a", "u", "", "")),
            "column 'price': 10.5 exceeds max_abs_numeric 10");
}

// The config of kConfig with `transform` on the NUMERIC column "price".
proto::DatasetConfig PriceTransformed(const std::string& transform) {
  proto::DatasetConfig config = Config();
  absl::Status status =
      ParseTextProto(transform, "transform", config.mutable_columns(1)->mutable_transform());
  EXPECT_TRUE(status.ok()) << status;
  return config;
}

TEST(BatchParserTest, Log1pTransformsANumericAndRefusesANegativeCell) {
  const proto::DatasetConfig config = PriceTransformed("log1p: true");
  Batch batch =
      ParseGoodLines({Line("1", "0", "a", "u", "", ""), Line("1", "9999", "a", "u", "", ""),
                      Line("1", "", "a", "u", "", "")},
                     config);
  ASSERT_EQ(batch.size, 3);
  EXPECT_FLOAT_EQ(batch.numerics[0].values[0], 0);
  EXPECT_FLOAT_EQ(batch.numerics[0].values[1], std::log1p(9999.0));
  // Missing stays missing.
  EXPECT_EQ(batch.numerics[0].present, (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(batch.numerics[0].values[2], 0);
  EXPECT_EQ(BadLineReason(BatchParser(config, 4), Line("1", "-0.5", "a", "u", "", "")),
            "column 'price': -0.5 is negative; transform log1p needs a value >= 0");
  // max_abs_numeric bounds the cell as written, before the transform.
  EXPECT_EQ(BadLineReason(BatchParser(config, 4), Line("1", "2e6", "a", "u", "", "")),
            "column 'price': 2e+06 exceeds max_abs_numeric 1e+06");
}

TEST(BatchParserTest, StandardizeAndClipApplyAfterLog1p) {
  Batch standardized =
      ParseGoodLines({Line("1", "7", "a", "u", "", "")}, PriceTransformed("mean: 3 stddev: 2"));
  EXPECT_FLOAT_EQ(standardized.numerics[0].values[0], 2);
  Batch clipped =
      ParseGoodLines({Line("1", "7", "a", "u", "", ""), Line("1", "-7", "a", "u", "", "")},
                     PriceTransformed("clip: 1.5"));
  EXPECT_EQ(clipped.numerics[0].values, (std::vector<float>{1.5f, -1.5f}));
  // log1p(e^2 - 1) = 2, standardized to (2 - 1) / 0.25 = 4, clipped to 3.
  Batch all = ParseGoodLines({Line("1", absl::StrCat(std::expm1(2.0)), "a", "u", "", "")},
                             PriceTransformed("log1p: true mean: 1 stddev: 0.25 clip: 3"));
  EXPECT_FLOAT_EQ(all.numerics[0].values[0], 3);
  Batch unclipped = ParseGoodLines({Line("1", absl::StrCat(std::expm1(2.0)), "a", "u", "", "")},
                                   PriceTransformed("log1p: true mean: 1 stddev: 0.25"));
  EXPECT_NEAR(unclipped.numerics[0].values[0], 4, 1e-4);
}

TEST(BatchParserTest, MinMaxMapsTheRangeToZeroOneAfterTheOtherSteps) {
  Batch scaled =
      ParseGoodLines({Line("1", "7", "a", "u", "", ""), Line("1", "-3", "a", "u", "", ""),
                      Line("1", "20", "a", "u", "", ""), Line("1", "", "a", "u", "", "")},
                     PriceTransformed("min: 2 max: 12"));
  // (7 - 2) / 10; below min and above max clamp to 0 and 1; missing stays missing.
  EXPECT_EQ(scaled.numerics[0].values, (std::vector<float>{0.5f, 0.0f, 1.0f, 0.0f}));
  EXPECT_EQ(scaled.numerics[0].present, (std::vector<uint8_t>{1, 1, 1, 0}));
  // log1p(e^2 - 1) = 2, then (2 - 1) / (5 - 1).
  Batch after_log1p = ParseGoodLines({Line("1", absl::StrCat(std::expm1(2.0)), "a", "u", "", "")},
                                     PriceTransformed("log1p: true min: 1 max: 5"));
  EXPECT_NEAR(after_log1p.numerics[0].values[0], 0.25, 1e-5);
}

TEST(BatchParserTest, ALabelOutsideItsDomainIsBad) {
  BatchParser binary(Config(), 4, {{"click", kBinaryLabelClasses, "ctr"}});
  EXPECT_EQ(BadLineReason(binary, Line("7", "1", "a", "u", "", "")),
            "column 'click': '7' is not a class id in 0..1 (task 'ctr')");
  EXPECT_EQ(BadLineReason(binary, Line("0.5", "1", "a", "u", "", "")),
            "column 'click': '0.5' is not a class id in 0..1 (task 'ctr')");
  EXPECT_EQ(BadLineReason(binary, Line("-1", "1", "a", "u", "", "")),
            "column 'click': '-1' is not a class id in 0..1 (task 'ctr')");
  EXPECT_EQ(BadLineReason(binary, Line("inf", "1", "a", "u", "", "")),
            "column 'click': 'inf' is not a finite number");

  BatchParser multiclass(Config(), 4, {{"click", 5, "rating"}});
  EXPECT_EQ(BadLineReason(multiclass, Line("9", "1", "a", "u", "", "")),
            "column 'click': '9' is not a class id in 0..4 (task 'rating')");
  // Two tasks of one column: both domains apply.
  BatchParser both(Config(), 4, {{"click", 5, "rating"}, {"click", 2, "ctr"}});
  EXPECT_EQ(BadLineReason(both, Line("4", "1", "a", "u", "", "")),
            "column 'click': '4' is not a class id in 0..1 (task 'ctr')");

  // In the domain, or missing, is good; without a domain any finite label is.
  for (const BatchParser* parser : {&binary, &multiclass, &both}) {
    Batch batch = parser->NewBatch();
    absl::StatusOr<BatchParser::Layout> layout = parser->MatchHeader(kHeader, "test.tsv");
    ASSERT_TRUE(layout.ok()) << layout.status();
    std::string reason;
    for (const char* label : {"0", "1", "1.0", ""}) {
      EXPECT_TRUE(parser->ParseLine(Line(label, "1", "a", "u", "", ""), &*layout, &batch, &reason))
          << label << ": " << reason;
    }
  }
  EXPECT_EQ(ParseGoodLines({Line("7.5", "1", "a", "u", "", "")}).labels[0].values,
            (std::vector<float>{7.5f}));
}

TEST(BatchParserTest, LabelDomainsMustNameALabelColumn) {
  EXPECT_TRUE(BatchParser::CheckLabelDomains(Config(), {{"click", 2, "ctr"}}).ok());
  absl::Status status = BatchParser::CheckLabelDomains(Config(), {{"price", 2, "ctr"}});
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("task 'ctr': label column 'price' is not a LABEL column"));
  status = BatchParser::CheckLabelDomains(Config(), {{"nope", 2, "ctr"}});
  EXPECT_THAT(status.message(), HasSubstr("label column 'nope' is not a LABEL column"));
  status = BatchParser::CheckLabelDomains(Config(), {{"click", 1, "one"}});
  EXPECT_THAT(status.message(), HasSubstr("task 'one': label domain of 1 classes (needs >= 2)"));
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
