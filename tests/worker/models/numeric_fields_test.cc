#include "worker/models/numeric_fields.h"

#include <string>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"

namespace granary {
namespace {

proto::DatasetConfig Dataset() {
  proto::DatasetConfig dataset;
  EXPECT_TRUE(ParseTextProto(testing_batch::kDataset, "dataset", &dataset).ok());
  return dataset;
}

google::protobuf::RepeatedPtrField<std::string> Columns(std::initializer_list<std::string> names) {
  google::protobuf::RepeatedPtrField<std::string> columns;
  for (const std::string& name : names) *columns.Add() = name;
  return columns;
}

TEST(NumericFieldsTest, CopiesColumnsInConfigOrderWithMissingAsZero) {
  absl::StatusOr<NumericFields> fields =
      NumericFields::Create(Columns({"score", "views"}), Dataset());
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(fields->num_fields(), 2);
  nn::Matrix values;
  ASSERT_TRUE(fields->Prepare(testing_batch::SmallBatch(), &values).ok());
  nn::Matrix expected(3, 2);
  expected << 2, 0.5f,  // sample 0
      0, 1.5f,          // sample 1: score missing
      -0.5f, -1;
  EXPECT_EQ(values, expected);
}

TEST(NumericFieldsTest, NoFieldsGiveAnEmptyMatrixPerSample) {
  absl::StatusOr<NumericFields> fields = NumericFields::Create(Columns({}), Dataset());
  ASSERT_TRUE(fields.ok()) << fields.status();
  nn::Matrix values;
  ASSERT_TRUE(fields->Prepare(testing_batch::SmallBatch(), &values).ok());
  EXPECT_EQ(values.rows(), 3);
  EXPECT_EQ(values.cols(), 0);
}

TEST(NumericFieldsTest, AColumnThatIsMissingOrNotNumericIsNamed) {
  absl::StatusOr<NumericFields> fields =
      NumericFields::Create(Columns({"views", "nope"}), Dataset());
  EXPECT_TRUE(absl::IsInvalidArgument(fields.status()));
  EXPECT_NE(fields.status().message().find("no column 'nope'"), std::string::npos)
      << fields.status();
  fields = NumericFields::Create(Columns({"user_id"}), Dataset());
  EXPECT_TRUE(absl::IsInvalidArgument(fields.status()));
  EXPECT_NE(fields.status().message().find("column 'user_id' is not NUMERIC"), std::string::npos)
      << fields.status();
}

TEST(NumericFieldsTest, ABatchWithoutTheColumnIsNamed) {
  absl::StatusOr<NumericFields> fields =
      NumericFields::Create(Columns({"views", "score"}), Dataset());
  ASSERT_TRUE(fields.ok()) << fields.status();
  Batch batch = testing_batch::SmallBatch();
  batch.numerics.pop_back();
  nn::Matrix values;
  absl::Status status = fields->Prepare(batch, &values);
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("batch has no NUMERIC column 'score'"), std::string::npos)
      << status;
}

}  // namespace
}  // namespace granary
