#include "worker/train/spearman.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

TEST(MidRanksTest, TiesShareTheirMeanRank) {
  // Sorted: 1 (rank 1), 2 2 2 (ranks 2..4, mean 3), 5 (rank 5).
  EXPECT_EQ(MidRanks(std::vector<double>{2, 5, 2, 1, 2}), (std::vector<double>{3, 5, 3, 1, 3}));
  EXPECT_TRUE(MidRanks(std::vector<double>{}).empty());
}

TEST(SpearmanTest, MonotoneAgreementIsOneAndReversalMinusOne) {
  const std::vector<double> x = {1, 2, 3, 4, 5};
  // Any increasing transform of x ranks alike: Pearson of the values would not be 1 here.
  const std::vector<double> cubes = {1, 8, 27, 64, 125};
  const std::vector<double> reversed = {10, 9, 8, 7, 6};
  EXPECT_DOUBLE_EQ(*Spearman(x, cubes), 1.0);
  EXPECT_DOUBLE_EQ(*Spearman(x, reversed), -1.0);
}

TEST(SpearmanTest, MatchesTheTextbookValueWithTies) {
  // Mid-ranks of x: 1.5 1.5 3 4 5, of y: 1 2 3 4.5 4.5. Their Pearson correlation: the
  // centred ranks are (-1.5 -1.5 0 1 2) and (-2 -1 0 1.5 1.5): products sum to 9, squares to
  // 9.5 on each side, so rho = 9 / 9.5.
  const std::vector<double> x = {1, 1, 2, 3, 4};
  const std::vector<double> y = {1, 2, 3, 5, 5};
  EXPECT_NEAR(*Spearman(x, y), 9.0 / 9.5, 1e-12);
}

TEST(SpearmanTest, UndefinedForConstantOrTooShortInput) {
  EXPECT_FALSE(Spearman(std::vector<double>{1, 2, 3}, std::vector<double>{4, 4, 4}).has_value());
  EXPECT_FALSE(Spearman(std::vector<double>{1}, std::vector<double>{2}).has_value());
  EXPECT_FALSE(Spearman(std::vector<double>{}, std::vector<double>{}).has_value());
}

}  // namespace
}  // namespace granary
