// SeedStore: RALM's item representation by its seed users (Liu et al., KDD 2019): per item,
// the vectors of the most recent users who clicked it, clustered by k-means
// (worker/models/kmeans.h) into the centroids the look-alike scorer reads
// (worker/models/ralm_lookalike.h).
//
// The store is fed from the click stream (AddClick) and re-clusters the items whose seeds
// changed on Refresh, which the caller runs periodically (the paper: every few minutes). No
// parameter of the scorer changes, so an item that arrived after training gets a
// representation as soon as a Refresh follows its first click.
//
// Memory is bounded: at most max_items items, each with at most max_seeds_per_item seed
// vectors (a ring: a new click replaces the item's oldest seed) and at most
// clustering.num_clusters centroids, so at most
//   max_items * ((max_seeds_per_item + num_clusters + 1) * dim + num_clusters) floats
// (the +1 is the mean of the seeds, for the average-pooled ablation; the last term the
// centroids' log shares). When a click on a new item
// finds the store full, the item whose last click is oldest is dropped first.
//
// Not thread-safe: one thread at a time (the stream's reader, then Refresh, then the scorer).
#ifndef GRANARY_WORKER_MODELS_SEED_STORE_H_
#define GRANARY_WORKER_MODELS_SEED_STORE_H_

#include <cstdint>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "worker/models/kmeans.h"
#include "worker/nn/tensor.h"

namespace granary {

struct SeedStoreOptions {
  // Seeds kept per item, the most recent clickers. Default 100.
  int max_seeds_per_item = 100;
  // Items kept; the least recently clicked go first. Default 100000.
  int64_t max_items = 100000;
  // K (num_clusters), the Lloyd bound and the seed of each item's clustering.
  KMeansOptions clustering;
};

class SeedStore {
 public:
  // What the scorer reads of an item after a Refresh.
  struct ItemSeeds {
    nn::Matrix centroids;   // [k, dim], k <= min(K, seeds): the clusters that have seeds
    nn::Matrix log_shares;  // [k, 1]: log(seeds of the centroid / seeds of the item)
    nn::Matrix mean;        // [1, dim]: the mean of the seeds (the average-pooled ablation)
    int num_seeds = 0;
  };

  // REQUIRES: dim >= 1, options.max_seeds_per_item >= 1, options.max_items >= 1 and
  // options.clustering valid (KMeans).
  SeedStore(int dim, const SeedStoreOptions& options);
  SeedStore(const SeedStore&) = delete;
  SeedStore& operator=(const SeedStore&) = delete;

  // Records that the user of vector `user` [1, dim] clicked `item`: the vector becomes one of
  // the item's seeds, replacing its oldest when it has max_seeds_per_item. The item's
  // representation changes on the next Refresh.
  void AddClick(uint64_t item, nn::ConstMatrixRef user);

  // Re-clusters every item whose seeds changed since the last Refresh; returns how many.
  int Refresh();

  // The item's centroids and mean as of the last Refresh, or null if it had no seeds then (or
  // was dropped). Valid until the next AddClick or Refresh.
  const ItemSeeds* Find(uint64_t item) const;

  int64_t num_items() const { return static_cast<int64_t>(items_.size()); }
  int dim() const { return dim_; }

 private:
  struct Item {
    nn::Matrix seeds;  // [max_seeds_per_item, dim] ring, the first `count` rows filled
    int count = 0;
    int next = 0;  // the ring's oldest row once count == max_seeds_per_item
    uint64_t last_click = 0;
    bool changed = false;
    bool clustered = false;
    ItemSeeds clusters;
  };

  const int dim_;
  const SeedStoreOptions options_;
  absl::flat_hash_map<uint64_t, Item> items_;
  // Every item by the clock of its last click, oldest first: the eviction order.
  std::map<uint64_t, uint64_t> item_by_last_click_;
  uint64_t clock_ = 0;
  KMeansResult scratch_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_SEED_STORE_H_
