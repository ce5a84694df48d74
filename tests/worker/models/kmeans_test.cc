#include "worker/models/kmeans.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace granary {
namespace {

constexpr int kDim = 6;
constexpr int kClusters = 4;
constexpr int kPointsPerCluster = 50;
constexpr float kCenterScale = 5.0f;
constexpr float kNoise = 0.3f;

// kClusters well-separated centers and kPointsPerCluster noisy points around each; point i
// belongs to center i % kClusters.
struct PlantedClusters {
  nn::Matrix centers;
  nn::Matrix points;
};

PlantedClusters Plant(uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  PlantedClusters planted;
  planted.centers.resize(kClusters, kDim);
  for (Eigen::Index i = 0; i < planted.centers.size(); ++i) {
    planted.centers.data()[i] = kCenterScale * normal(rng);
  }
  planted.points.resize(kClusters * kPointsPerCluster, kDim);
  for (int i = 0; i < kClusters * kPointsPerCluster; ++i) {
    for (int j = 0; j < kDim; ++j) {
      planted.points(i, j) = planted.centers(i % kClusters, j) + kNoise * normal(rng);
    }
  }
  return planted;
}

TEST(KMeansTest, RecoversPlantedClusters) {
  const PlantedClusters planted = Plant(3);
  KMeansOptions options;
  options.num_clusters = kClusters;
  KMeansResult result;
  KMeans(planted.points, options, &result);
  ASSERT_EQ(result.centroids.rows(), kClusters);
  ASSERT_EQ(result.assignments.size(), planted.points.rows());
  // Every planted center has a centroid within the noise of the mean of its points, and every
  // point of a planted cluster shares its cluster's centroid.
  std::vector<int> centroid_of_center(kClusters, -1);
  for (int center = 0; center < kClusters; ++center) {
    Eigen::Index nearest = 0;
    (result.centroids.rowwise() - planted.centers.row(center))
        .rowwise()
        .squaredNorm()
        .minCoeff(&nearest);
    EXPECT_LT((result.centroids.row(nearest) - planted.centers.row(center)).norm(), kNoise)
        << "center " << center;
    centroid_of_center[center] = static_cast<int>(nearest);
  }
  std::vector<int> sorted = centroid_of_center;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_TRUE(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end())
      << "two planted centers share a centroid";
  for (int i = 0; i < planted.points.rows(); ++i) {
    EXPECT_EQ(result.assignments[i], centroid_of_center[i % kClusters]) << "point " << i;
  }
  for (int size : result.sizes) EXPECT_EQ(size, kPointsPerCluster);
  EXPECT_LE(result.iterations, options.max_iterations);
}

TEST(KMeansTest, SameSeedSameCentroids) {
  const PlantedClusters planted = Plant(5);
  KMeansOptions options;
  options.num_clusters = kClusters + 2;  // more than planted: the split depends on the draws
  KMeansResult first;
  KMeansResult second;
  KMeans(planted.points, options, &first);
  KMeans(planted.points, options, &second);
  EXPECT_EQ(first.centroids, second.centroids);
  EXPECT_EQ(first.assignments, second.assignments);
}

TEST(KMeansTest, FewerPointsThanClustersGiveOneCentroidPerPoint) {
  const nn::Matrix points = Plant(7).points.topRows(3);
  KMeansResult result;
  KMeans(points, KMeansOptions{}, &result);
  EXPECT_EQ(result.centroids, points);
  EXPECT_EQ(result.sizes, std::vector<int32_t>({1, 1, 1}));
}

TEST(KMeansTest, IterationsAreBounded) {
  const PlantedClusters planted = Plant(9);
  KMeansOptions options;
  options.num_clusters = kClusters * 3;
  options.max_iterations = 1;
  KMeansResult result;
  KMeans(planted.points, options, &result);
  EXPECT_EQ(result.iterations, 1);
  EXPECT_EQ(result.centroids.rows(), kClusters * 3);
}

TEST(KMeansTest, NoPointsNoCentroids) {
  KMeansResult result;
  KMeans(nn::Matrix(0, kDim), KMeansOptions{}, &result);
  EXPECT_EQ(result.centroids.rows(), 0);
  EXPECT_TRUE(result.assignments.empty());
}

}  // namespace
}  // namespace granary
