#include "worker/train/retrieval_metrics.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gradient_check.h"

namespace granary {

using nn::Matrix;
namespace {

TEST(RetrievalMetricsTest, RanksAgainstTheWholeCorpus) {
  Matrix items(4, 2);
  items << 1, 0, 0, 1, 0.5, 0.5, -1, 0;
  Matrix users(2, 2);
  users << 1, 0.1f, 0, 1;
  const std::vector<int32_t> targets = {2, 0};
  std::vector<int32_t> ranks(2);
  RankTargets(users, items, targets, absl::MakeSpan(ranks));
  // User 0 scores 1, 0.1, 0.55, -1: item 2 is second. User 1 scores 0, 1, 0.5, 0: item 0 is
  // below two items and ties with item 3, and a tie counts against the target: rank 4.
  EXPECT_EQ(ranks, (std::vector<int32_t>{2, 4}));
  const std::vector<int> ks = {1, 2};
  const RetrievalMetrics metrics = RetrievalMetricsOf(ranks, ks);
  EXPECT_EQ(metrics.queries, 2);
  EXPECT_DOUBLE_EQ(metrics.hit_rates[0], 0.0);
  EXPECT_DOUBLE_EQ(metrics.hit_rates[1], 0.5);
  EXPECT_DOUBLE_EQ(metrics.mrr, (1.0 / 2 + 1.0 / 4) / 2);
}

TEST(RetrievalMetricsTest, EmptySubsetHasNoQueries) {
  const std::vector<int> ks = {50};
  const RetrievalMetrics metrics = RetrievalMetricsOf({}, ks);
  EXPECT_EQ(metrics.queries, 0);
  EXPECT_EQ(metrics.hit_rates, std::vector<double>{0.0});
}

TEST(RetrievalMetricsTest, BestInterestRanksWithOneInterestAreRankTargets) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal;
  const int queries = kQueryBlock + 3, items = 40, dim = 3;
  Matrix users(queries, 2 * dim), corpus(items, dim);
  for (Eigen::Index i = 0; i < users.size(); ++i) users.data()[i] = normal(rng);
  for (Eigen::Index i = 0; i < corpus.size(); ++i) corpus.data()[i] = normal(rng);
  std::vector<int32_t> targets(queries), ones(queries, 1), twos(queries, 2);
  for (int q = 0; q < queries; ++q) targets[q] = q % items;
  std::vector<int32_t> expected(queries), ranks(queries);
  RankTargets(users.leftCols(dim), corpus, targets, absl::MakeSpan(expected));
  RankTargetsBestInterest(users, ones, corpus, targets, absl::MakeSpan(ranks));
  EXPECT_EQ(ranks, expected);
  // With both interests an item scores the better of its two products.
  std::vector<int32_t> both(queries);
  RankTargetsBestInterest(users, twos, corpus, targets, absl::MakeSpan(both));
  for (int q = 0; q < queries; ++q) {
    const Matrix best = (users.row(q).head(dim) * corpus.transpose())
                            .cwiseMax(users.row(q).tail(dim) * corpus.transpose());
    EXPECT_EQ(both[q], (best.array() >= best(0, targets[q])).count()) << q;
  }
}

TEST(RetrievalMetricsTest, TopKAgreesWithRanksAcrossQueryBlocks) {
  // More queries than one block, so the blocking is exercised.
  std::mt19937 rng(67);
  const int num_queries = kQueryBlock + 37, num_items = 300, k = 10;
  const Matrix users = nn::gradient_check::RandomMatrix(&rng, num_queries, 8);
  const Matrix items = nn::gradient_check::RandomMatrix(&rng, num_items, 8);
  std::vector<int32_t> top(static_cast<size_t>(num_queries) * k);
  TopK(users, items, k, absl::MakeSpan(top));
  std::uniform_int_distribution<int32_t> item(0, num_items - 1);
  std::vector<int32_t> targets(num_queries), ranks(num_queries);
  for (int32_t& target : targets) target = item(rng);
  RankTargets(users, items, targets, absl::MakeSpan(ranks));
  int in_top = 0;
  for (int q = 0; q < num_queries; ++q) {
    const auto begin = top.begin() + q * k;
    const auto found = std::find(begin, begin + k, targets[q]);
    EXPECT_EQ(found != begin + k, ranks[q] <= k) << "query " << q;
    if (found != begin + k) {
      EXPECT_EQ(found - begin + 1, ranks[q]) << "query " << q;
      ++in_top;
    }
    for (int i = 1; i < k; ++i) {
      EXPECT_GE(users.row(q).dot(items.row(begin[i - 1])), users.row(q).dot(items.row(begin[i])));
    }
  }
  EXPECT_GT(in_top, 0);
}

}  // namespace
}  // namespace granary
