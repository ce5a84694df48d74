#include "worker/models/tower.h"

#include "glog/logging.h"

namespace granary {

Tower::Tower(nn::ParameterSet* params, const std::string& name, EmbeddedFields fields, int dim,
             int extra_dim, absl::Span<const uint32_t> widths, float dropout_rate)
    : fields_(std::move(fields)),
      dim_(dim),
      extra_dim_(extra_dim),
      hidden_(params, name, fields_.num_slots() * dim + extra_dim, widths.first(widths.size() - 1),
              dropout_rate),
      out_(params, name + ".out", hidden_.output_dim(), static_cast<int>(widths.back())) {}

const nn::Matrix& Tower::Forward(nn::ConstMatrixRef rows, const std::vector<SlotRows>& slot_rows,
                                 nn::ConstMatrixRef extra) {
  const int pooled_width = fields_.num_slots() * dim_;
  const Eigen::Index batch = static_cast<Eigen::Index>(slot_rows[0].offsets.size()) - 1;
  input_.resize(batch, pooled_width + extra_dim_);
  fields_.Pool(rows, slot_rows, input_.leftCols(pooled_width));
  if (extra_dim_ > 0) {
    DCHECK_EQ(extra.rows(), batch);
    DCHECK_EQ(extra.cols(), extra_dim_);
    input_.rightCols(extra_dim_) = extra;
  }
  return normalize_.Forward(out_.Forward(hidden_.Forward(input_)));
}

const nn::Matrix& Tower::Backward(const nn::Matrix& d_vectors,
                                  const std::vector<SlotRows>& slot_rows, nn::MatrixRef d_rows) {
  const nn::Matrix& d_input = hidden_.Backward(out_.Backward(normalize_.Backward(d_vectors)));
  const int pooled_width = fields_.num_slots() * dim_;
  fields_.PoolBackward(d_input.leftCols(pooled_width), slot_rows, d_rows);
  d_extra_ = d_input.rightCols(extra_dim_);
  return d_extra_;
}

}  // namespace granary
