// KMeans: Lloyd's k-means over the rows of a matrix, as RALM clusters an item's seed users
// into the centroids its look-alike attention reads (worker/models/ralm_lookalike.h).
//
// Deterministic: the initial centroids are chosen by k-means++ (Arthur and Vassilvitskii,
// SODA 2007) from a std::mt19937_64 seeded with options.seed, whose output (unlike <random>'s
// distributions) is the same on every platform; Lloyd iterations follow until no point changes
// cluster or options.max_iterations ran, so the work per call is bounded. A cluster that loses
// all its points keeps its previous centroid.
//
// Thread-safe: a pure function of its arguments.
#ifndef GRANARY_WORKER_MODELS_KMEANS_H_
#define GRANARY_WORKER_MODELS_KMEANS_H_

#include <cstdint>
#include <vector>

#include "worker/nn/tensor.h"

namespace granary {

struct KMeansOptions {
  // K, the most centroids wanted; an item with fewer seeds gets one centroid per seed. The
  // RALM paper uses 20 offline and 100 online. Default 20.
  int num_clusters = 20;
  // Bound on the Lloyd iterations after the k-means++ initialization. Default 10.
  int max_iterations = 10;
  // Seeds the k-means++ draws.
  uint64_t seed = 1;
};

struct KMeansResult {
  nn::Matrix centroids;              // [k, d], k = min(num_clusters, points)
  std::vector<int32_t> assignments;  // [points]: the centroid row of each point
  std::vector<int32_t> sizes;        // [k]: points per centroid
  int iterations = 0;                // Lloyd iterations run
};

// Clusters the rows of `points` [N, d] into min(options.num_clusters, N) centroids under the
// Euclidean distance. N == 0 gives an empty result. REQUIRES: options.num_clusters >= 1,
// options.max_iterations >= 0.
void KMeans(nn::ConstMatrixRef points, const KMeansOptions& options, KMeansResult* result);

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_KMEANS_H_
