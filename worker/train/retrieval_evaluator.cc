#include "worker/train/retrieval_evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/vector_file.h"
#include "glog/logging.h"
#include "worker/train/spearman.h"

namespace granary {
namespace {

using nn::Matrix;

absl::Status WriteVectors(const std::string& path, proto::VectorFileHeader::Kind kind, int dim,
                          const std::string& source, const std::vector<uint64_t>& keys,
                          const std::vector<float>& values) {
  proto::VectorFileHeader header;
  header.set_kind(kind);
  header.set_dim(static_cast<uint32_t>(dim));
  header.set_source(source);
  absl::StatusOr<std::unique_ptr<VectorFileWriter>> writer = VectorFileWriter::Create(path, header);
  if (!writer.ok()) return writer.status();
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::Status status = (*writer)->Add(
        keys[i], absl::MakeConstSpan(values.data() + i * static_cast<size_t>(dim), dim));
    if (!status.ok()) return status;
  }
  return (*writer)->Finish();
}

}  // namespace

void RetrievalEvaluator::Store(const float* vector, int dim, std::vector<float>* values,
                               int32_t* row) {
  if (*row < 0) {
    *row = static_cast<int32_t>(values->size() / dim);
    values->insert(values->end(), vector, vector + dim);
  } else {
    std::memcpy(values->data() + static_cast<size_t>(*row) * dim, vector, sizeof(float) * dim);
  }
}

void RetrievalEvaluator::AddTrainBatch(const RetrievalInput& input, const RetrievalModel& model) {
  const Matrix& items = model.item_vectors();
  dim_ = static_cast<int>(items.cols());
  for (int b = 0; b < input.batch_size; ++b) {
    if (!input.has_item_id[b]) continue;
    const uint64_t key = input.item_ids[b];
    train_items_.insert(key);
    auto [it, inserted] = item_row_.try_emplace(key, -1);
    if (inserted) {
      item_keys_.push_back(key);
      item_positives_.push_back(0);
    }
    Store(items.row(b).data(), dim_, &item_values_, &it->second);
  }
}

void RetrievalEvaluator::AddEvalBatch(const RetrievalInput& input, const RetrievalModel& model) {
  const Matrix& users = model.user_vectors();
  const Matrix& items = model.item_vectors();
  const Matrix* cold_items = model.cold_item_vectors();
  const Matrix* interests = model.interest_vectors();
  dim_ = static_cast<int>(items.cols());
  query_width_ = interests != nullptr ? static_cast<int>(interests->cols()) : dim_;
  const Matrix& logits = model.output(0);
  for (int b = 0; b < input.batch_size; ++b) {
    if (input.has_user_id[b]) {
      auto [it, inserted] = user_row_.try_emplace(input.user_ids[b], -1);
      if (inserted) user_keys_.push_back(input.user_ids[b]);
      Store(users.row(b).data(), dim_, &user_values_, &it->second);
    }
    if (!input.has_item_id[b]) continue;
    const uint64_t key = input.item_ids[b];
    const bool cold = !train_items_.contains(key);
    const Matrix& vectors = cold && cold_items != nullptr ? *cold_items : items;
    auto [it, inserted] = item_row_.try_emplace(key, -1);
    if (inserted) {
      item_keys_.push_back(key);
      item_positives_.push_back(0);
      Store(vectors.row(b).data(), dim_, &item_values_, &it->second);
    }
    item_positives_[it->second] += input.positive[b];
    if (input.has_label[0][b]) {
      const float score =
          cold && cold_items != nullptr ? users.row(b).dot(vectors.row(b)) : logits(b, 0);
      (cold ? cold_scores_ : warm_scores_).push_back({score, input.labels[0][b]});
    }
    if (input.positive[b]) {
      const Matrix& queries = interests != nullptr ? *interests : users;
      query_values_.insert(query_values_.end(), queries.row(b).data(),
                           queries.row(b).data() + queries.cols());
      if (interests != nullptr) query_counts_.push_back(model.interest_counts()[b]);
      query_targets_.push_back(key);
    }
  }
}

RetrievalEvaluation RetrievalEvaluator::Evaluate(absl::Span<const int> ks,
                                                 const RetrievalModel& model) const {
  RetrievalEvaluation evaluation;
  evaluation.corpus_items = static_cast<int64_t>(item_keys_.size());
  for (uint64_t key : item_keys_) evaluation.cold_items += !train_items_.contains(key);
  const Eigen::Index queries = static_cast<Eigen::Index>(query_targets_.size());
  std::vector<int32_t> targets(queries), ranks(queries);
  for (Eigen::Index q = 0; q < queries; ++q) targets[q] = item_row_.at(query_targets_[q]);
  if (queries > 0) {
    const Matrix users = nn::ConstMatrixMap(query_values_.data(), queries, query_width_);
    const Matrix items =
        nn::ConstMatrixMap(item_values_.data(), static_cast<Eigen::Index>(item_keys_.size()), dim_);
    if (query_counts_.empty()) {
      RankTargets(users, items, targets, absl::MakeSpan(ranks));
    } else {
      RankTargetsBestInterest(users, query_counts_, items, targets, absl::MakeSpan(ranks));
    }
  }
  std::vector<int32_t> cold_ranks;
  for (Eigen::Index q = 0; q < queries; ++q) {
    if (!train_items_.contains(query_targets_[q])) cold_ranks.push_back(ranks[q]);
  }
  evaluation.overall = RetrievalMetricsOf(ranks, ks);
  evaluation.cold = RetrievalMetricsOf(cold_ranks, ks);
  evaluation.warm_samples = static_cast<int64_t>(warm_scores_.size());
  evaluation.cold_samples = static_cast<int64_t>(cold_scores_.size());
  evaluation.warm_auc = Auc(warm_scores_);
  evaluation.cold_auc = Auc(cold_scores_);

  std::vector<int32_t> cold_rows;
  for (size_t row = 0; row < item_keys_.size(); ++row) {
    if (!train_items_.contains(item_keys_[row])) cold_rows.push_back(static_cast<int32_t>(row));
  }
  Matrix cold_vectors(static_cast<Eigen::Index>(cold_rows.size()), dim_);
  for (size_t i = 0; i < cold_rows.size(); ++i) {
    cold_vectors.row(i) =
        nn::ConstMatrixMap(item_values_.data(), static_cast<Eigen::Index>(item_keys_.size()), dim_)
            .row(cold_rows[i]);
  }
  std::vector<float> predicted(cold_rows.size());
  if (!cold_rows.empty() && model.NewItemPopularity(cold_vectors, absl::MakeSpan(predicted))) {
    std::vector<double> x(predicted.begin(), predicted.end()), y;
    for (int32_t row : cold_rows) y.push_back(static_cast<double>(item_positives_[row]));
    evaluation.new_item_popularity_spearman = Spearman(x, y);
  }
  return evaluation;
}

absl::Status RetrievalEvaluator::ExportVectors(const std::string& user_path,
                                               const std::string& item_path,
                                               const std::string& source) const {
  if (dim_ == 0) return absl::FailedPreconditionError("no vectors to export: no batch was added");
  absl::Status status = WriteVectors(user_path, proto::VectorFileHeader::USER, dim_, source,
                                     user_keys_, user_values_);
  if (!status.ok()) return status;
  return WriteVectors(item_path, proto::VectorFileHeader::ITEM, dim_, source, item_keys_,
                      item_values_);
}

}  // namespace granary
