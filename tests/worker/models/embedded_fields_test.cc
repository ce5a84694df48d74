#include "worker/models/embedded_fields.h"

#include <string>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"

namespace granary {
namespace {

using nn::Matrix;

google::protobuf::RepeatedPtrField<std::string> Names(std::initializer_list<const char*> names) {
  google::protobuf::RepeatedPtrField<std::string> result;
  for (const char* name : names) result.Add(name);
  return result;
}

TEST(EmbeddedFieldsTest, PoolsEveryKindIntoItsSlot) {
  absl::StatusOr<EmbeddedFields> fields =
      EmbeddedFields::Create(Names({"item_id", "tags", "history"}), testing_batch::SmallDataset());
  ASSERT_TRUE(fields.ok()) << fields.status();
  // The history embeds its one CATEGORICAL step field; the NUMERIC rating is not embedded.
  ASSERT_EQ(fields->num_slots(), 3);
  EmbeddedFieldsInput input;
  input.StartBatch(3);
  ASSERT_TRUE(fields->Prepare(testing_batch::SmallBatch(), &input, &input.slots).ok());
  // Items 7, 8 (sample 2 has none), tags 21, 22, history 9 (8 and 7 are shared).
  ASSERT_EQ(input.keys.size(), 5u);
  Matrix rows(5, 2);
  for (int r = 0; r < 5; ++r) rows.row(r) << static_cast<float>(r), 1.0f;
  Matrix pooled(3, 6);
  fields->Pool(rows, input.slots, pooled);
  // Rows: 7 -> 0, 8 -> 1, 21 -> 2, 22 -> 3, 9 -> 4.
  Matrix expected(3, 6);
  expected << 0, 1, 2.5, 1, 2.5, 1,  // item 7; tags 21, 22; history 8, 9
      1, 1, 0, 0, 0, 0,              // item 8; no tags; no history
      0, 0, 2, 1, 1.0f / 3, 1;       // no item; tag 21; history 7, 8, 7
  EXPECT_TRUE(pooled.isApprox(expected)) << pooled;

  Matrix d_rows = Matrix::Zero(5, 2);
  fields->PoolBackward(Matrix::Ones(3, 6), input.slots, d_rows);
  // Row 7 (index 0): item of sample 0 (1) + two of sample 2's three history steps (2/3).
  EXPECT_NEAR(d_rows(0, 0), 1.0f + 2.0f / 3.0f, 1e-6f);
}

TEST(EmbeddedFieldsTest, BadColumnsAreNamed) {
  absl::StatusOr<EmbeddedFields> fields =
      EmbeddedFields::Create(Names({"click"}), testing_batch::SmallDataset());
  EXPECT_TRUE(absl::IsInvalidArgument(fields.status()));
  EXPECT_NE(fields.status().message().find("'click' is not"), std::string::npos);
  fields = EmbeddedFields::Create(Names({"nope"}), testing_batch::SmallDataset());
  EXPECT_TRUE(absl::IsInvalidArgument(fields.status()));
  EXPECT_NE(fields.status().message().find("no column 'nope'"), std::string::npos);

  fields = EmbeddedFields::Create(Names({"tags", "history"}), testing_batch::SmallDataset());
  ASSERT_TRUE(fields.ok());
  Batch batch = testing_batch::SmallBatch();
  batch.sequences[0].fields.erase(batch.sequences[0].fields.begin());
  EmbeddedFieldsInput input;
  absl::Status status = fields->Prepare(batch, &input, &input.slots);
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("no step field 'item_id'"), std::string::npos) << status;
  batch.multi_categoricals.clear();
  status = fields->Prepare(batch, &input, &input.slots);
  EXPECT_NE(status.message().find("no MULTI_CATEGORICAL column 'tags'"), std::string::npos);
}

}  // namespace
}  // namespace granary
