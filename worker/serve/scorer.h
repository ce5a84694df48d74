// Scorer: every task's predictions for the candidates of a score request, by the job's model
// over one served version of its tables (common/model_bundle.h).
//
// The model is the trainer's: built by CreateModel from the job config, its dense parameters
// the job seed's initial values w0 plus the dense table's offsets (worker/train/trainer.h
// "Dense parameters"), its embedding rows those of the sparse table. A key the served tables
// do not hold reads as zeros: an id never trained (or evicted) contributes nothing, as in most
// serving systems; the trainer's evaluation reads such a key as its table's initializer would
// make a new row instead, so scores agree wherever every key has a row.
//
// Thread-safe: each call takes a model replica from a pool (building one when none is free), and
// a replica reloads its dense parameters when the served version changed since its last call.
#ifndef GRANARY_WORKER_SERVE_SCORER_H_
#define GRANARY_WORKER_SERVE_SCORER_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_bundle.h"
#include "common/proto/serve.pb.h"
#include "worker/job_config.h"

namespace granary {

// A user's vectors from a retrieval model: `count` vectors of `dim` floats (MIND: one per
// interest; the others: one).
struct UserVectors {
  int dim = 0;
  int count = 0;
  std::vector<float> values;  // count * dim
};

class Scorer {
 public:
  // FailedPrecondition naming the job if its model cannot be built.
  static absl::StatusOr<std::unique_ptr<Scorer>> Create(const JobSpec& spec);
  ~Scorer();
  Scorer(const Scorer&) = delete;
  Scorer& operator=(const Scorer&) = delete;

  // Scores the candidates of `lines` (TSV lines under `header`, e.g. from ScoreRequestParser)
  // with `model`: per task, the probability (BINARY), the softmax over the classes
  // (MULTICLASS) or the prediction (REGRESSION) of every candidate, in line order.
  // InvalidArgument naming the candidate if a line does not parse (the reasons of
  // worker/batch_parser.h), or the header does not match the dataset; FailedPrecondition
  // naming the table if a served table's dim does not fit the model.
  absl::StatusOr<proto::ScoreResponse> Score(const std::string& header,
                                             const std::vector<std::string>& lines,
                                             const ServedModel& model);

  // The user's vectors of a retrieval model (worker/models/retrieval_model.h) from `line` (the
  // user's columns, e.g. ScoreRequestParser::ParseTopK). Unimplemented naming the architecture
  // if the job's model is not a retrieval model; otherwise as Score.
  absl::StatusOr<UserVectors> UserVectorsOf(const std::string& header, const std::string& line,
                                            const ServedModel& model);

  // The vectors ATNN gives the items of `lines` as new arrivals (its generator, from their
  // side features: AtnnModel::generator_vectors), one per line (count = lines; UserVectors'
  // layout, though they are items'). Unimplemented naming the
  // architecture if the job's model is not atnn; otherwise as Score.
  absl::StatusOr<UserVectors> NewItemVectorsOf(const std::string& header,
                                               const std::vector<std::string>& lines,
                                               const ServedModel& model);

 private:
  struct Replica;
  explicit Scorer(const JobSpec& spec);
  absl::StatusOr<std::unique_ptr<Replica>> TakeReplica();
  void ReturnReplica(std::unique_ptr<Replica> replica);
  // Builds the batch of the candidates (the user's columns repeated in each), prepares it, fills
  // its rows from `model` and runs the model forward: the one place a request meets the model.
  absl::Status ForwardCandidates(Replica& replica, const std::string& header,
                                 const std::vector<std::string>& lines,
                                 const ServedModel& model) const;
  // ForwardCandidates, then every task's predictions.
  absl::StatusOr<proto::ScoreResponse> ScoreOn(Replica& replica, const std::string& header,
                                               const std::vector<std::string>& lines,
                                               const ServedModel& model) const;

  const JobSpec spec_;
  std::mutex mutex_;  // guards idle_
  std::vector<std::unique_ptr<Replica>> idle_;
};

}  // namespace granary

#endif  // GRANARY_WORKER_SERVE_SCORER_H_
