#include "worker/tools/item_item_regression.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

using ::testing::HasSubstr;
using Pick = ItemItemRegression::Pick;

// Items 10 and 11 are nearly always picked together; 12 goes with 11 once; 13 is picked alone.
std::vector<Pick> SmallPicks() {
  return {{1, 10}, {1, 11}, {2, 10}, {2, 11}, {3, 10}, {3, 11}, {4, 11}, {4, 12}, {5, 13}};
}

TEST(ItemItemRegressionTest, WeightsSolveTheRidgeRegressionOfEachItemOnTheOthers) {
  const double regularization = 0.5;
  absl::StatusOr<ItemItemRegression> fit = ItemItemRegression::Fit(SmallPicks(), regularization);
  ASSERT_TRUE(fit.ok()) << fit.status();
  const std::vector<int> items = {10, 11, 12, 13};
  ASSERT_EQ(fit->num_items(), 4);
  // Gram matrix X^T X of the picks (users 1..5 x items 10..13).
  const double gram[4][4] = {{3, 3, 0, 0}, {3, 4, 1, 0}, {0, 1, 1, 0}, {0, 0, 0, 1}};
  // Column j of B minimizes ||X_j - X B_j||^2 + regularization ||B_j||^2 with B_jj = 0: the
  // normal equations hold in every row but j, ((X^T X + regularization I) B)_ij = (X^T X)_ij.
  for (size_t j = 0; j < items.size(); ++j) {
    EXPECT_EQ(fit->Weight(items[j], items[j]), 0.0);
    for (size_t i = 0; i < items.size(); ++i) {
      if (i == j) continue;
      double lhs = regularization * fit->Weight(items[i], items[j]);
      for (size_t k = 0; k < items.size(); ++k) lhs += gram[i][k] * fit->Weight(items[k], items[j]);
      EXPECT_NEAR(lhs, gram[i][j], 1e-9) << "row " << items[i] << " column " << items[j];
    }
  }
  // What that means: 10 predicts 11 strongly, 13 predicts nothing, 12 and 10 compete for 11.
  EXPECT_GT(fit->Weight(10, 11), 0.5);
  EXPECT_GT(fit->Weight(12, 11), 0.0);
  EXPECT_EQ(fit->Weight(13, 11), 0.0);
  EXPECT_EQ(fit->Weight(11, 13), 0.0);
}

TEST(ItemItemRegressionTest, RepeatedPicksCountOnceAndUnknownItemsWeighNothing) {
  std::vector<Pick> repeated = SmallPicks();
  repeated.push_back({1, 10});
  repeated.push_back({4, 12});
  absl::StatusOr<ItemItemRegression> once = ItemItemRegression::Fit(SmallPicks(), 1.0);
  absl::StatusOr<ItemItemRegression> twice = ItemItemRegression::Fit(repeated, 1.0);
  ASSERT_TRUE(once.ok() && twice.ok());
  for (int from = 10; from <= 13; ++from) {
    for (int to = 10; to <= 13; ++to) {
      EXPECT_DOUBLE_EQ(once->Weight(from, to), twice->Weight(from, to));
    }
  }
  EXPECT_TRUE(once->Knows(12));
  EXPECT_FALSE(once->Knows(99));
  EXPECT_EQ(once->Weight(99, 10), 0.0);
  EXPECT_EQ(once->Weight(10, 99), 0.0);
}

TEST(ItemItemRegressionTest, NoPicksBadRegularizationOrTooManyItemsAreErrors) {
  EXPECT_THAT(ItemItemRegression::Fit({}, 1.0).status().message(), HasSubstr("no picks"));
  EXPECT_THAT(ItemItemRegression::Fit(SmallPicks(), 0.0).status().message(),
              HasSubstr("regularization must be > 0"));
  absl::StatusOr<ItemItemRegression> too_many = ItemItemRegression::Fit(SmallPicks(), 1.0, 3);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_many.status().message(), HasSubstr("4 distinct items, more than max_items 3"));
}

}  // namespace
}  // namespace granary
