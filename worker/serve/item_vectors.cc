#include "worker/serve/item_vectors.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "worker/nn/tensor.h"

namespace granary {

namespace {
constexpr char kItemVectorFile[] = "item_vectors.vec";
}  // namespace

absl::StatusOr<std::vector<proto::TopKItem>> TopKItems(const VectorSet& items,
                                                       const UserVectors& user, int k) {
  const int dim = static_cast<int>(items.header.dim());
  if (dim != user.dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("the item vectors have dim ", dim, ", the model's user vectors ", user.dim));
  }
  const Eigen::Index n = static_cast<Eigen::Index>(items.keys.size());
  const nn::ConstMatrixMap corpus(items.values.data(), n, dim);
  const nn::ConstMatrixMap interests(user.values.data(), user.count, dim);
  // [n, count]: every item against every interest; an item scores by its best one.
  const nn::Matrix all = corpus * interests.transpose();
  const Eigen::VectorXf best = all.rowwise().maxCoeff();
  std::vector<Eigen::Index> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const size_t top = std::min(order.size(), static_cast<size_t>(k));
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](Eigen::Index a, Eigen::Index b) {
                      return best(a) > best(b) || (best(a) == best(b) && a < b);
                    });
  std::vector<proto::TopKItem> result(top);
  for (size_t i = 0; i < top; ++i) {
    result[i].set_key(items.keys[order[i]]);
    result[i].set_score(best(order[i]));
  }
  return result;
}

absl::StatusOr<std::shared_ptr<const ItemVectorStore::DayVectors>> ItemVectorStore::ForDay(
    const std::string& day) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (current_ != nullptr && current_->day == day) return current_;
  namespace fs = std::filesystem;
  const std::string runs = absl::StrCat(model_dir_, "/runs/", day);
  std::string newest;
  std::error_code error;
  for (const auto& attempt : fs::directory_iterator(runs, error)) {
    const std::string path = (attempt.path() / kItemVectorFile).string();
    if (fs::exists(path) && path > newest) newest = path;
  }
  if (newest.empty()) {
    return absl::NotFoundError(absl::StrCat("no run of day ", day, " exported item vectors (", runs,
                                            "/*/", kItemVectorFile, ")"));
  }
  absl::StatusOr<VectorSet> vectors = ReadVectorFile(newest);
  if (!vectors.ok()) return vectors.status();
  auto loaded = std::make_shared<DayVectors>();
  loaded->day = day;
  loaded->path = newest;
  loaded->vectors = *std::move(vectors);
  current_ = loaded;
  return current_;
}

}  // namespace granary
