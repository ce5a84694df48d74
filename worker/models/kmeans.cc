#include "worker/models/kmeans.h"

#include <algorithm>
#include <limits>
#include <random>

#include "glog/logging.h"

namespace granary {
namespace {

// A uniform double in [0, 1) from the top 53 bits of one draw: the same on every platform.
double UniformUnit(std::mt19937_64* rng) {
  constexpr int kMantissaBits = 53;
  constexpr double kScale = 1.0 / static_cast<double>(uint64_t{1} << kMantissaBits);
  return static_cast<double>((*rng)() >> (64 - kMantissaBits)) * kScale;
}

// Writes into *assignments the nearest centroid of every point and into *distances its
// squared distance. Returns how many points changed cluster.
int AssignPoints(nn::ConstMatrixRef points, const nn::Matrix& centroids,
                 std::vector<int32_t>* assignments, std::vector<double>* distances) {
  int changed = 0;
  for (Eigen::Index i = 0; i < points.rows(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    int32_t nearest = 0;
    for (Eigen::Index c = 0; c < centroids.rows(); ++c) {
      const double distance = (points.row(i) - centroids.row(c)).squaredNorm();
      if (distance < best) {
        best = distance;
        nearest = static_cast<int32_t>(c);
      }
    }
    changed += (*assignments)[i] != nearest;
    (*assignments)[i] = nearest;
    (*distances)[i] = best;
  }
  return changed;
}

}  // namespace

void KMeans(nn::ConstMatrixRef points, const KMeansOptions& options, KMeansResult* result) {
  CHECK_GE(options.num_clusters, 1);
  CHECK_GE(options.max_iterations, 0);
  const Eigen::Index n = points.rows();
  const Eigen::Index k = std::min<Eigen::Index>(options.num_clusters, n);
  result->centroids.resize(k, points.cols());
  result->assignments.assign(n, -1);
  result->sizes.assign(k, 0);
  result->iterations = 0;
  if (n == 0) return;
  if (k == n) {
    // One centroid per point: nothing to choose.
    result->centroids = points;
    for (Eigen::Index i = 0; i < n; ++i) {
      result->assignments[i] = static_cast<int32_t>(i);
      result->sizes[i] = 1;
    }
    return;
  }

  // k-means++: the first centroid uniformly, each next one with probability proportional to
  // the squared distance to the nearest centroid chosen so far.
  std::mt19937_64 rng(options.seed);
  std::vector<double> distances(n, std::numeric_limits<double>::infinity());
  result->centroids.row(0) = points.row(static_cast<Eigen::Index>(UniformUnit(&rng) * n));
  for (Eigen::Index c = 1; c < k; ++c) {
    double total = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      distances[i] = std::min<double>(distances[i],
                                      (points.row(i) - result->centroids.row(c - 1)).squaredNorm());
      total += distances[i];
    }
    Eigen::Index chosen = n - 1;
    if (total > 0) {
      double target = UniformUnit(&rng) * total;
      for (Eigen::Index i = 0; i < n; ++i) {
        target -= distances[i];
        if (target < 0) {
          chosen = i;
          break;
        }
      }
    }
    result->centroids.row(c) = points.row(chosen);
  }

  // Lloyd.
  AssignPoints(points, result->centroids, &result->assignments, &distances);
  nn::Matrix sums(k, points.cols());
  for (int iteration = 0; iteration < options.max_iterations; ++iteration) {
    sums.setZero();
    std::fill(result->sizes.begin(), result->sizes.end(), 0);
    for (Eigen::Index i = 0; i < n; ++i) {
      sums.row(result->assignments[i]) += points.row(i);
      ++result->sizes[result->assignments[i]];
    }
    for (Eigen::Index c = 0; c < k; ++c) {
      if (result->sizes[c] > 0) {
        result->centroids.row(c) = sums.row(c) / static_cast<float>(result->sizes[c]);
      }
    }
    ++result->iterations;
    if (AssignPoints(points, result->centroids, &result->assignments, &distances) == 0) break;
  }
  std::fill(result->sizes.begin(), result->sizes.end(), 0);
  for (Eigen::Index i = 0; i < n; ++i) ++result->sizes[result->assignments[i]];
}

}  // namespace granary
