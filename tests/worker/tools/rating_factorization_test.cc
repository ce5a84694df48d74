#include "worker/tools/rating_factorization.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

using ::testing::HasSubstr;

// A noise-free rank-2 table with biases: rating(u, i) = 3 + user_bias + item_bias + p_u . q_i,
// with smooth, distinct factors so that ALS has a unique answer to find.
double TrueRating(int user, int item) {
  const double user_bias = 0.3 * std::sin(user * 0.7);
  const double item_bias = 0.4 * std::cos(item * 1.3);
  const double p0 = std::sin(user * 1.1), p1 = std::cos(user * 0.4);
  const double q0 = 0.5 * std::cos(item * 0.9), q1 = 0.5 * std::sin(item * 2.1);
  return 3 + user_bias + item_bias + p0 * q0 + p1 * q1;
}

constexpr int kUsers = 60;
constexpr int kItems = 30;

// Every rating of users 0..kUsers-1 (user kUsers is held out of every fit).
std::vector<ObservedRating> FullTable() {
  std::vector<ObservedRating> ratings;
  for (int user = 0; user < kUsers; ++user) {
    for (int item = 0; item < kItems; ++item)
      ratings.push_back({user, item, TrueRating(user, item)});
  }
  return ratings;
}

RatingFactorization::Options ExactOptions() {
  RatingFactorization::Options options;
  options.factors = 2;
  options.regularization = 1e-3;
  options.iterations = 200;
  return options;
}

TEST(RatingFactorizationTest, FoldsInAUserTheFitNeverSawFromSomeRatingsAndPredictsTheRest) {
  absl::StatusOr<RatingFactorization> fit = RatingFactorization::Fit(FullTable(), ExactOptions());
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->factors(), 2);
  const int held_out = kUsers;
  RatingFactorization::UserFoldIn user(&*fit);
  for (int item = 0; item < 10; ++item) user.Add(item, TrueRating(held_out, item));
  EXPECT_EQ(user.count(), 10);
  // Three unknowns (bias and two factors) from ten exact ratings: the other twenty items are
  // predicted to within the small ridge's pull.
  for (int item = 10; item < kItems; ++item) {
    EXPECT_NEAR(user.Predict(item), TrueRating(held_out, item), 0.02) << "item " << item;
  }
  // A user of the fit, folded in again from all their ratings, gets them back.
  RatingFactorization::UserFoldIn known(&*fit);
  for (int item = 0; item < kItems; ++item) known.Add(item, TrueRating(7, item));
  for (int item = 0; item < kItems; ++item) {
    EXPECT_NEAR(known.Predict(item), TrueRating(7, item), 0.02) << "item " << item;
  }
}

TEST(RatingFactorizationTest, RegularizationShrinksAFoldInWithFewRatingsTowardsTheItemBias) {
  std::vector<ObservedRating> ratings = FullTable();
  RatingFactorization::Options options = ExactOptions();
  options.regularization = 10;
  absl::StatusOr<RatingFactorization> fit = RatingFactorization::Fit(ratings, options);
  ASSERT_TRUE(fit.ok()) << fit.status();
  // One rating 2 above the item's prediction for a user with no ratings: the ridge of weight 10
  // moves the user by much less than that.
  RatingFactorization::UserFoldIn user(&*fit);
  const double no_user = fit->mean() + fit->ItemBias(3);
  EXPECT_DOUBLE_EQ(user.Predict(3), no_user);
  user.Add(3, no_user + 2);
  EXPECT_GT(user.Predict(3), no_user);
  EXPECT_LT(user.Predict(3), no_user + 0.2);
}

TEST(RatingFactorizationTest, UnknownItemsAreIgnoredAndPredictedFromTheUsersBiasAlone) {
  absl::StatusOr<RatingFactorization> fit = RatingFactorization::Fit(FullTable(), ExactOptions());
  ASSERT_TRUE(fit.ok()) << fit.status();
  const int unknown = kItems + 5;
  EXPECT_TRUE(fit->Knows(0));
  EXPECT_FALSE(fit->Knows(unknown));
  EXPECT_EQ(fit->ItemBias(unknown), 0.0);
  EXPECT_TRUE(fit->ItemFactors(unknown).isZero());
  EXPECT_FALSE(fit->ItemFactors(0).isZero());
  EXPECT_EQ(fit->ItemFactors(0).size(), 2);
  RatingFactorization::UserFoldIn user(&*fit);
  EXPECT_DOUBLE_EQ(user.Predict(unknown), fit->mean());
  user.Add(unknown, 5);  // not known: no effect
  EXPECT_EQ(user.count(), 0);
  EXPECT_DOUBLE_EQ(user.Predict(unknown), fit->mean());
  // A user who rates every known item 1 above its prediction without user: a positive bias,
  // which is all an unknown item gets.
  for (int item = 0; item < kItems; ++item) user.Add(item, fit->mean() + fit->ItemBias(item) + 1);
  EXPECT_EQ(user.count(), kItems);
  EXPECT_GT(user.Predict(unknown), fit->mean() + 0.5);
}

TEST(RatingFactorizationTest, SameSeedSameFit) {
  RatingFactorization::Options options;
  options.factors = 8;
  options.iterations = 5;
  absl::StatusOr<RatingFactorization> a = RatingFactorization::Fit(FullTable(), options);
  absl::StatusOr<RatingFactorization> b = RatingFactorization::Fit(FullTable(), options);
  ASSERT_TRUE(a.ok() && b.ok());
  RatingFactorization::UserFoldIn user_a(&*a), user_b(&*b);
  for (int item = 0; item < 5; ++item) {
    user_a.Add(item, 4);
    user_b.Add(item, 4);
  }
  for (int item = 0; item < kItems; ++item) EXPECT_EQ(user_a.Predict(item), user_b.Predict(item));
}

TEST(RatingFactorizationTest, NoRatingsOrBadOptionsAreErrors) {
  EXPECT_THAT(RatingFactorization::Fit({}, RatingFactorization::Options()).status().message(),
              HasSubstr("no ratings"));
  const std::vector<ObservedRating> one = {{1, 2, 4}};
  for (auto change : {+[](RatingFactorization::Options* o) { o->factors = 0; },
                      +[](RatingFactorization::Options* o) { o->iterations = 0; },
                      +[](RatingFactorization::Options* o) { o->regularization = 0; }}) {
    RatingFactorization::Options options;
    change(&options);
    absl::StatusOr<RatingFactorization> fit = RatingFactorization::Fit(one, options);
    EXPECT_FALSE(fit.ok());
    EXPECT_THAT(fit.status().message(), HasSubstr("need factors >= 1"));
  }
}

}  // namespace
}  // namespace granary
