#include "worker/train/lookalike_metrics.h"

#include "gtest/gtest.h"

namespace granary {
namespace {

TEST(MeanPrecisionAtKTest, AveragesTheTopKOfEveryItemShownToKUsers) {
  // Item 1: the best two are a click and a miss (1/2). Item 2: both best are clicks (2/2). Item
  // 3 was shown to one user only: left out.
  const std::vector<ItemScoredLabel> examples = {
      {1, 0.9f, 1}, {1, 0.8f, 0}, {1, 0.1f, 1}, {2, 0.5f, 1},
      {2, 0.7f, 1}, {2, 0.2f, 0}, {3, 0.9f, 1},
  };
  const std::optional<PrecisionAtK> result = MeanPrecisionAtK(examples, 2);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->items, 2);
  EXPECT_DOUBLE_EQ(result->precision, 0.75);
}

TEST(MeanPrecisionAtKTest, TiesCountAgainstTheModel) {
  const std::vector<ItemScoredLabel> examples = {{1, 0.5f, 1}, {1, 0.5f, 0}};
  EXPECT_DOUBLE_EQ(MeanPrecisionAtK(examples, 1)->precision, 0.0);
}

TEST(MeanPrecisionAtKTest, NoItemWithKUsersIsNoFigure) {
  EXPECT_FALSE(MeanPrecisionAtK({{1, 0.5f, 1}}, 2).has_value());
}

}  // namespace
}  // namespace granary
