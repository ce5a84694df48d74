#include "worker/serve/popularity.h"

#include "absl/strings/str_cat.h"
#include "common/vector_file.h"
#include "worker/models/atnn_model.h"
#include "worker/nn/tensor.h"

namespace granary {

absl::StatusOr<std::vector<float>> MeanVectorOf(const std::string& path) {
  absl::StatusOr<VectorSet> vectors = ReadVectorFile(path);
  if (!vectors.ok()) return vectors.status();
  if (vectors->keys.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": holds no vector to average"));
  }
  const Eigen::Index dim = static_cast<Eigen::Index>(vectors->header.dim());
  const Eigen::Index count = static_cast<Eigen::Index>(vectors->keys.size());
  const nn::ConstMatrixMap all(vectors->values.data(), count, dim);
  // Summed in double, as AtnnModel sums its user vectors: thousands of floats lose digits.
  const Eigen::RowVectorXd sum = all.cast<double>().colwise().sum();
  const Eigen::RowVectorXf mean = (sum / static_cast<double>(count)).cast<float>();
  return std::vector<float>(mean.data(), mean.data() + mean.size());
}

absl::StatusOr<std::vector<float>> NewItemPopularity::Of(const std::string& user_vector_path,
                                                         const UserVectors& items) {
  nn::Matrix mean;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (path_ != user_vector_path) {
      absl::StatusOr<std::vector<float>> read = MeanVectorOf(user_vector_path);
      if (!read.ok()) return read.status();
      path_ = user_vector_path;
      mean_ = *std::move(read);
    }
    mean = nn::ConstMatrixMap(mean_.data(), 1, static_cast<Eigen::Index>(mean_.size()));
  }
  if (mean.cols() != items.dim) {
    return absl::FailedPreconditionError(absl::StrCat(user_vector_path, " has dim ", mean.cols(),
                                                      ", the model's item vectors ", items.dim));
  }
  const nn::Matrix vectors = nn::ConstMatrixMap(items.values.data(), items.count, items.dim);
  std::vector<float> popularity(static_cast<size_t>(items.count));
  PopularityScores(mean, vectors, absl::MakeSpan(popularity));
  return popularity;
}

}  // namespace granary
