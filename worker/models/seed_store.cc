#include "worker/models/seed_store.h"

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
    entry.clusters.centroids = scratch_.centroids;
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
