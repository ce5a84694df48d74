// ItemVectorStore: the item vectors a retrieval model exported with the served day's training
// (<model_dir>/runs/<day>/<attempt>/item_vectors.vec, worker/train/trainer.h "Retrieval
// evaluation"), and the exact top-k search over them for POST /topk.
//
// The vectors of a day are read once, when a request first asks with that day served (the
// newest attempt of the day that has the file), and kept until another day is served.
//
// Thread-safe.
#ifndef GRANARY_WORKER_SERVE_ITEM_VECTORS_H_
#define GRANARY_WORKER_SERVE_ITEM_VECTORS_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto/serve.pb.h"
#include "common/vector_file.h"
#include "worker/serve/scorer.h"

namespace granary {

// The `k` items of `items` whose vectors have the highest dot product with the best of `user`'s
// vectors, best first (ties: the lower index first). InvalidArgument if the dims differ.
absl::StatusOr<std::vector<proto::TopKItem>> TopKItems(const VectorSet& items,
                                                       const UserVectors& user, int k);

class ItemVectorStore {
 public:
  explicit ItemVectorStore(std::string model_dir) : model_dir_(std::move(model_dir)) {}

  struct DayVectors {
    std::string day;
    std::string path;
    VectorSet vectors;
  };
  // The item vectors of `day`. NotFound naming the folder if no run of the day exported them;
  // the errors of ReadVectorFile (naming the file) if they do not read.
  absl::StatusOr<std::shared_ptr<const DayVectors>> ForDay(const std::string& day);

 private:
  const std::string model_dir_;
  std::mutex mutex_;  // guards current_
  std::shared_ptr<const DayVectors> current_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_SERVE_ITEM_VECTORS_H_
