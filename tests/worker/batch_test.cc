#include "worker/batch.h"

#include "gtest/gtest.h"

namespace granary {
namespace {

TEST(BatchTest, ColumnNamedFindsAColumnOrNamesTheMissingOne) {
  Batch batch;
  batch.categoricals.push_back({"user", {}, {}});
  batch.categoricals.push_back({"item", {}, {}});
  absl::StatusOr<const CategoricalColumn*> item =
      ColumnNamed(batch.categoricals, "item", "CATEGORICAL");
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_EQ(*item, &batch.categoricals[1]);

  absl::StatusOr<const FloatColumn*> label = ColumnNamed(batch.labels, "click", "LABEL");
  ASSERT_TRUE(absl::IsInvalidArgument(label.status()));
  EXPECT_EQ(label.status().message(), "batch has no LABEL column 'click'");
}

TEST(BatchTest, StepFieldNamedFindsAFieldOrNamesTheSequence) {
  SequenceColumn history;
  history.name = "history";
  history.fields.push_back({"item", proto::StepFieldConfig::CATEGORICAL, {}, {}});
  absl::StatusOr<const SequenceField*> item = StepFieldNamed(history, "item");
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_EQ(*item, &history.fields[0]);

  absl::StatusOr<const SequenceField*> rating = StepFieldNamed(history, "rating");
  ASSERT_TRUE(absl::IsInvalidArgument(rating.status()));
  EXPECT_EQ(rating.status().message(), "sequence 'history' has no step field 'rating'");
}

}  // namespace
}  // namespace granary
