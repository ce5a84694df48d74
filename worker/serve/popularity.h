// ATNN's predicted popularity of new items for granary_serve's POST /popularity
// (docs/operations.md "Serving"): <mean user vector, the item's generator vector>, the
// definition of docs/models.md "DAT and ATNN on a planted stream" (PopularityScores,
// worker/models/atnn_model.h). The mean is over the user vectors the served day's training
// exported (user_vectors.vec beside the item_vectors.vec that POST /topk searches).
//
// No Eigen here: this header reaches translation units that include httplib.h, whose
// <resolv.h> defines a macro `_res` that breaks Eigen's headers included after it.
//
// Thread-safe.
#ifndef GRANARY_WORKER_SERVE_POPULARITY_H_
#define GRANARY_WORKER_SERVE_POPULARITY_H_

#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/serve/scorer.h"

namespace granary {

// The mean of the vectors of the vector file at `path` (dim floats). The errors of
// ReadVectorFile (naming the file); FailedPrecondition naming the file if it holds no vector.
absl::StatusOr<std::vector<float>> MeanVectorOf(const std::string& path);

// The popularity of each of `items` (count vectors of dim floats) given the mean user vector
// of the file at `user_vector_path`, read once per file and kept until another file is asked
// for. FailedPrecondition naming the file if its dim differs from the items'; the errors of
// MeanVectorOf.
class NewItemPopularity {
 public:
  absl::StatusOr<std::vector<float>> Of(const std::string& user_vector_path,
                                        const UserVectors& items);

 private:
  std::mutex mutex_;  // guards path_ and mean_
  std::string path_;
  std::vector<float> mean_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_SERVE_POPULARITY_H_
