#include "worker/models/seed_store.h"

#include <cmath>

#include "glog/logging.h"

namespace granary {

SeedStore::SeedStore(int dim, const SeedStoreOptions& options) : dim_(dim), options_(options) {
  CHECK_GE(dim, 1);
  CHECK_GE(options.max_seeds_per_item, 1);
  CHECK_GE(options.max_items, 1);
  CHECK_GE(options.clustering.num_clusters, 1);
  CHECK_GE(options.clustering.max_iterations, 0);
}

void SeedStore::AddClick(uint64_t item, nn::ConstMatrixRef user) {
  DCHECK_EQ(user.rows(), 1);
  DCHECK_EQ(user.cols(), dim_);
  auto found = items_.find(item);
  if (found == items_.end()) {
    if (num_items() >= options_.max_items) {
      auto oldest = item_by_last_click_.begin();
      items_.erase(oldest->second);
      item_by_last_click_.erase(oldest);
    }
    found = items_.try_emplace(item).first;
    found->second.seeds.resize(options_.max_seeds_per_item, dim_);
  } else {
    item_by_last_click_.erase(found->second.last_click);
  }
  Item& entry = found->second;
  entry.last_click = ++clock_;
  item_by_last_click_.emplace(entry.last_click, item);
  if (entry.count < options_.max_seeds_per_item) {
    entry.seeds.row(entry.count++) = user;
  } else {
    entry.seeds.row(entry.next) = user;
    entry.next = (entry.next + 1) % options_.max_seeds_per_item;
  }
  entry.changed = true;
}

int SeedStore::Refresh() {
  int refreshed = 0;
  for (auto& [item, entry] : items_) {
    if (!entry.changed) continue;
    const auto seeds = entry.seeds.topRows(entry.count);
    KMeans(seeds, options_.clustering, &scratch_);
    // A cluster k-means left empty is no part of the item.
    int kept = 0;
    for (int32_t size : scratch_.sizes) kept += size > 0;
    entry.clusters.centroids.resize(kept, dim_);
    entry.clusters.log_shares.resize(kept, 1);
    int row = 0;
    for (size_t c = 0; c < scratch_.sizes.size(); ++c) {
      if (scratch_.sizes[c] == 0) continue;
      entry.clusters.centroids.row(row) = scratch_.centroids.row(c);
      entry.clusters.log_shares(row, 0) =
          std::log(static_cast<float>(scratch_.sizes[c]) / static_cast<float>(entry.count));
      ++row;
    }
    entry.clusters.mean = seeds.colwise().mean();
    entry.clusters.num_seeds = entry.count;
    entry.changed = false;
    entry.clustered = true;
    ++refreshed;
  }
  return refreshed;
}

const SeedStore::ItemSeeds* SeedStore::Find(uint64_t item) const {
  auto found = items_.find(item);
  if (found == items_.end() || !found->second.clustered) return nullptr;
  return &found->second.clusters;
}

}  // namespace granary
