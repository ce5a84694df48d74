#include "worker/nn/embedding_pooling.h"

#include "glog/logging.h"

namespace granary {
namespace nn {
namespace {

// The factor that turns sample b's weighted sum into its pooled value.
float PoolingScale(const MultiValuedField& field, Pooling pooling, int b) {
  if (pooling == Pooling::kSum) return 1.0f;
  const int32_t begin = field.offsets[b];
  const int32_t end = field.offsets[b + 1];
  float total_weight = static_cast<float>(end - begin);
  if (!field.weights.empty()) {
    total_weight = 0.0f;
    for (int32_t i = begin; i < end; ++i) total_weight += field.weights[i];
  }
  return total_weight != 0.0f ? 1.0f / total_weight : 0.0f;
}

void CheckField(const MultiValuedField& field, Eigen::Index batch_rows) {
  DCHECK_GE(field.offsets.size(), 1u);
  DCHECK_EQ(field.batch_size(), batch_rows);
  DCHECK_EQ(field.offsets[0], 0);
  DCHECK_EQ(static_cast<size_t>(field.offsets.back()), field.row_ids.size());
  DCHECK(field.weights.empty() || field.weights.size() == field.row_ids.size());
}

// B of a gathered sequence: step_row_ids is [B * num_steps], `sequence` [num_steps * B, dim]
// and `rows` [num rows, dim] (checked in debug builds).
int SequenceBatchSize(absl::Span<const int32_t> step_row_ids, int num_steps,
                      ConstMatrixRef sequence, ConstMatrixRef rows) {
  DCHECK_GT(num_steps, 0);
  DCHECK_EQ(step_row_ids.size() % num_steps, 0u);
  const int batch = static_cast<int>(step_row_ids.size()) / num_steps;
  DCHECK_EQ(sequence.rows(), static_cast<Eigen::Index>(batch) * num_steps);
  DCHECK_EQ(sequence.cols(), rows.cols());
  return batch;
}

}  // namespace

void PoolEmbeddings(ConstMatrixRef rows, const MultiValuedField& field, Pooling pooling,
                    MatrixRef pooled) {
  CheckField(field, pooled.rows());
  DCHECK_EQ(rows.cols(), pooled.cols());
  const bool weighted = !field.weights.empty();
  for (int b = 0; b < field.batch_size(); ++b) {
    auto out = pooled.row(b);
    out.setZero();
    for (int32_t i = field.offsets[b]; i < field.offsets[b + 1]; ++i) {
      DCHECK(field.row_ids[i] >= 0 && field.row_ids[i] < rows.rows()) << field.row_ids[i];
      if (weighted) {
        out += field.weights[i] * rows.row(field.row_ids[i]);
      } else {
        out += rows.row(field.row_ids[i]);
      }
    }
    if (pooling == Pooling::kMean) out *= PoolingScale(field, pooling, b);
  }
}

void PoolEmbeddingsBackward(ConstMatrixRef d_pooled, const MultiValuedField& field, Pooling pooling,
                            MatrixRef d_rows) {
  CheckField(field, d_pooled.rows());
  DCHECK_EQ(d_rows.cols(), d_pooled.cols());
  const bool weighted = !field.weights.empty();
  for (int b = 0; b < field.batch_size(); ++b) {
    const float scale = PoolingScale(field, pooling, b);
    for (int32_t i = field.offsets[b]; i < field.offsets[b + 1]; ++i) {
      DCHECK(field.row_ids[i] >= 0 && field.row_ids[i] < d_rows.rows()) << field.row_ids[i];
      const float factor = weighted ? scale * field.weights[i] : scale;
      d_rows.row(field.row_ids[i]) += factor * d_pooled.row(b);
    }
  }
}

void GatherSequence(ConstMatrixRef rows, absl::Span<const int32_t> step_row_ids, int num_steps,
                    MatrixRef sequence) {
  const int batch = SequenceBatchSize(step_row_ids, num_steps, sequence, rows);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < num_steps; ++t) {
      const int32_t id = step_row_ids[static_cast<size_t>(b) * num_steps + t];
      auto out = sequence.row(static_cast<Eigen::Index>(t) * batch + b);
      if (id == kPaddingRow) {
        out.setZero();
      } else {
        DCHECK(id >= 0 && id < rows.rows()) << id;
        out = rows.row(id);
      }
    }
  }
}

void GatherSequenceBackward(ConstMatrixRef d_sequence, absl::Span<const int32_t> step_row_ids,
                            int num_steps, MatrixRef d_rows) {
  const int batch = SequenceBatchSize(step_row_ids, num_steps, d_sequence, d_rows);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < num_steps; ++t) {
      const int32_t id = step_row_ids[static_cast<size_t>(b) * num_steps + t];
      if (id == kPaddingRow) continue;
      DCHECK(id >= 0 && id < d_rows.rows()) << id;
      d_rows.row(id) += d_sequence.row(static_cast<Eigen::Index>(t) * batch + b);
    }
  }
}

}  // namespace nn
}  // namespace granary
