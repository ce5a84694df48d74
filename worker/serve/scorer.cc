#include "worker/serve/scorer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "worker/batch_parser.h"
#include "worker/models/atnn_model.h"
#include "worker/models/model_factory.h"
#include "worker/models/retrieval_model.h"
#include "worker/nn/loss.h"

namespace granary {

// One model with what it needs per request; used by one request at a time.
struct Scorer::Replica {
  std::unique_ptr<Model> model;
  std::unique_ptr<ModelInput> input;
  std::unique_ptr<BatchParser> parser;
  std::vector<float> initial_values;  // w0
  std::vector<float> values;          // w0 + the served dense offsets
  std::vector<uint64_t> dense_keys;   // the dense table's block keys
  std::string loaded_day;             // the served version values came from
  nn::Matrix rows;
};

Scorer::Scorer(const JobSpec& spec) : spec_(spec) {}
Scorer::~Scorer() = default;

absl::StatusOr<std::unique_ptr<Scorer>> Scorer::Create(const JobSpec& spec) {
  std::unique_ptr<Scorer> scorer(new Scorer(spec));
  absl::StatusOr<std::unique_ptr<Replica>> replica = scorer->TakeReplica();
  if (!replica.ok()) return replica.status();
  scorer->ReturnReplica(*std::move(replica));
  return scorer;
}

absl::StatusOr<std::unique_ptr<Scorer::Replica>> Scorer::TakeReplica() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Replica> replica = std::move(idle_.back());
      idle_.pop_back();
      return replica;
    }
  }
  auto replica = std::make_unique<Replica>();
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel(spec_.job.model(), spec_.dataset);
  if (!model.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot build the job's model: ", model.status().message()));
  }
  replica->model = *std::move(model);
  replica->model->params().Initialize(spec_.job.training().seed());
  replica->model->params().FlattenValues(&replica->initial_values);
  replica->input = replica->model->NewInput();
  // Serving needs no label domains: a request carries no labels.
  replica->parser = std::make_unique<BatchParser>(spec_.dataset, 1);
  return replica;
}

void Scorer::ReturnReplica(std::unique_ptr<Replica> replica) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(std::move(replica));
}

absl::StatusOr<proto::ScoreResponse> Scorer::Score(const std::string& header,
                                                   const std::vector<std::string>& lines,
                                                   const ServedModel& model) {
  absl::StatusOr<std::unique_ptr<Replica>> replica = TakeReplica();
  if (!replica.ok()) return replica.status();
  absl::StatusOr<proto::ScoreResponse> response = ScoreOn(**replica, header, lines, model);
  ReturnReplica(*std::move(replica));
  return response;
}

absl::StatusOr<UserVectors> Scorer::UserVectorsOf(const std::string& header,
                                                  const std::string& line,
                                                  const ServedModel& model) {
  absl::StatusOr<std::unique_ptr<Replica>> replica = TakeReplica();
  if (!replica.ok()) return replica.status();
  absl::StatusOr<UserVectors> vectors;
  const auto* retrieval = dynamic_cast<const RetrievalModel*>((*replica)->model.get());
  if (retrieval == nullptr) {
    vectors = absl::UnimplementedError(absl::StrCat("the job's model (",
                                                    ArchitectureName(spec_.job.model()),
                                                    ") has no user and item vectors"));
  } else if (absl::Status run = ForwardCandidates(**replica, header, {line}, model); !run.ok()) {
    vectors = run;
  } else {
    vectors.emplace();
    const nn::Matrix* interests = retrieval->interest_vectors();
    const nn::Matrix& single = retrieval->user_vectors();
    vectors->count = interests == nullptr ? 1 : retrieval->interest_counts()[0];
    vectors->dim = static_cast<int>(single.cols());
    const nn::Matrix& all = interests == nullptr ? single : *interests;
    vectors->values.assign(all.row(0).data(),
                           all.row(0).data() + static_cast<size_t>(vectors->dim) * vectors->count);
  }
  ReturnReplica(*std::move(replica));
  return vectors;
}

absl::StatusOr<UserVectors> Scorer::NewItemVectorsOf(const std::string& header,
                                                     const std::vector<std::string>& lines,
                                                     const ServedModel& model) {
  absl::StatusOr<std::unique_ptr<Replica>> replica = TakeReplica();
  if (!replica.ok()) return replica.status();
  absl::StatusOr<UserVectors> vectors;
  const auto* atnn = dynamic_cast<const AtnnModel*>((*replica)->model.get());
  if (atnn == nullptr) {
    vectors = absl::UnimplementedError(
        absl::StrCat("the job's model (", ArchitectureName(spec_.job.model()),
                     ") predicts no new-item popularity; only atnn does"));
  } else if (absl::Status run = ForwardCandidates(**replica, header, lines, model); !run.ok()) {
    vectors = run;
  } else {
    const nn::Matrix& generated = atnn->generator_vectors();
    vectors.emplace();
    vectors->dim = static_cast<int>(generated.cols());
    vectors->count = static_cast<int>(generated.rows());
    // Row-major: row b's d floats are contiguous, as UserVectors lays them out.
    vectors->values.assign(generated.data(), generated.data() + generated.size());
  }
  ReturnReplica(*std::move(replica));
  return vectors;
}

absl::Status Scorer::ForwardCandidates(Replica& r, const std::string& header,
                                       const std::vector<std::string>& lines,
                                       const ServedModel& model) const {
  const proto::ModelConfig& config = spec_.job.model();

  // Dense parameters, once per served version.
  if (r.loaded_day != model.version().day()) {
    r.values = r.initial_values;
    const ServedTable* dense = model.table(config.dense_table());
    if (dense != nullptr) {
      const size_t dim = static_cast<size_t>(dense->dim());
      for (size_t block = 0; block * dim < r.values.size(); ++block) {
        const float* offsets = dense->Find(DenseBlockKey(config.dense_table(), block));
        if (offsets == nullptr) continue;
        const size_t end = std::min(r.values.size(), (block + 1) * dim);
        for (size_t i = block * dim; i < end; ++i) r.values[i] += offsets[i - block * dim];
      }
    }
    absl::Status loaded = r.model->params().LoadValues(r.values);
    if (!loaded.ok()) return loaded;
    r.loaded_day = model.version().day();
  }

  // The batch: one sample per candidate, the user's columns repeated in each.
  absl::StatusOr<BatchParser::Layout> layout = r.parser->MatchHeader(header, "request");
  if (!layout.ok()) return layout.status();
  Batch batch = r.parser->NewBatch();
  std::string reason;
  for (size_t c = 0; c < lines.size(); ++c) {
    if (!r.parser->ParseLine(lines[c], &*layout, &batch, &reason)) {
      return absl::InvalidArgumentError(absl::StrCat("candidate ", c, ": ", reason));
    }
  }
  absl::Status prepared = r.model->Prepare(batch, r.input.get());
  if (!prepared.ok()) return prepared;

  // The rows of the batch's keys; zeros where the served table has none.
  const int dim = r.model->embedding_dim();
  const ServedTable* sparse = model.table(config.sparse_table());
  if (sparse != nullptr && sparse->dim() != dim) {
    return absl::FailedPreconditionError(absl::StrCat("served table '", config.sparse_table(),
                                                      "' has dim ", sparse->dim(),
                                                      ", the model's embedding_dim is ", dim));
  }
  r.rows.setZero(static_cast<Eigen::Index>(r.input->keys.size()), dim);
  if (sparse != nullptr) {
    // One batched read of the request's keys (row-major: row i at data() + i * dim).
    absl::Status read = sparse->Read(r.input->keys, r.rows.data());
    if (!read.ok()) return read;
  }
  // Every sample is the request's user with one candidate: the user side runs once.
  r.model->ForwardOneUser(*r.input, r.rows);
  return absl::OkStatus();
}

absl::StatusOr<proto::ScoreResponse> Scorer::ScoreOn(Replica& r, const std::string& header,
                                                     const std::vector<std::string>& lines,
                                                     const ServedModel& model) const {
  if (absl::Status run = ForwardCandidates(r, header, lines, model); !run.ok()) return run;
  proto::ScoreResponse response;
  const std::vector<proto::TaskConfig>& tasks = r.model->tasks();
  for (size_t k = 0; k < tasks.size(); ++k) {
    const nn::Matrix& output = r.model->output(static_cast<int>(k));
    proto::TaskScores* scores = response.add_tasks();
    scores->set_task(tasks[k].name());
    scores->set_head(proto::TaskConfig::HeadKind_Name(tasks[k].head()));
    scores->set_classes(static_cast<int>(output.cols()));
    scores->mutable_scores()->Reserve(static_cast<int>(output.size()));
    for (Eigen::Index b = 0; b < output.rows(); ++b) {
      switch (tasks[k].head()) {
        case proto::TaskConfig::MULTICLASS: {
          const float top = output.row(b).maxCoeff();
          const double sum = (output.row(b).array() - top).exp().cast<double>().sum();
          for (Eigen::Index j = 0; j < output.cols(); ++j) {
            scores->add_scores(std::exp(static_cast<double>(output(b, j) - top)) / sum);
          }
          break;
        }
        case proto::TaskConfig::REGRESSION:
          scores->add_scores(output(b, 0));
          break;
        default:
          scores->add_scores(nn::Sigmoid(output(b, 0)));
          break;
      }
    }
  }
  return response;
}

}  // namespace granary
