#include "worker/nn/parameter_set.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/feature_key.h"
#include "common/random.h"
#include "glog/logging.h"

namespace granary {
namespace nn {
namespace {

// A float uniform in [-1, 1): 24 random bits scaled by a power of two and shifted, all exact
// in float, so the result is the same on every IEEE platform.
float UniformSymmetric(uint64_t* state) {
  constexpr float kTwoToMinus24 = 1.0f / 16777216.0f;
  const float unit = static_cast<float>(SplitMix64(state) >> 40) * kTwoToMinus24;
  return 2.0f * unit - 1.0f;
}

// Resizes *out to `size` (the blocks' total floats) and writes `part` (value or grad) of every
// block into it, in order.
void Flatten(const std::vector<std::unique_ptr<ParamBlock>>& blocks, Matrix ParamBlock::*part,
             int64_t size, std::vector<float>* out) {
  out->resize(size);
  float* next = out->data();
  for (const auto& block : blocks) {
    const Matrix& matrix = (*block).*part;
    std::memcpy(next, matrix.data(), matrix.size() * sizeof(float));
    next += matrix.size();
  }
}

}  // namespace

float ParameterSet::GlorotLimit(int fan_in, int fan_out) {
  return std::sqrt(6.0f / static_cast<float>(fan_in + fan_out));
}

ParamBlock* ParameterSet::Add(absl::string_view name, int rows, int cols, float init_limit) {
  CHECK(Find(name) == nullptr) << "duplicate parameter block name " << name;
  CHECK_GT(rows, 0) << name;
  CHECK_GT(cols, 0) << name;
  CHECK_GE(init_limit, 0.0f) << name;
  auto block = std::make_unique<ParamBlock>();
  block->name = std::string(name);
  block->value = Matrix::Zero(rows, cols);
  block->grad = Matrix::Zero(rows, cols);
  block->init_limit = init_limit;
  num_values_ += block->value.size();
  blocks_.push_back(std::move(block));
  return blocks_.back().get();
}

ParamBlock* ParameterSet::Find(absl::string_view name) const {
  for (const auto& block : blocks_) {
    if (block->name == name) return block.get();
  }
  return nullptr;
}

void ParameterSet::Initialize(uint64_t seed) {
  for (const auto& block : blocks_) {
    if (block->init_limit <= 0.0f) continue;
    // The seed passes through the mixer and the name through XXH3 (as a field name would),
    // so nearby seeds or names give unrelated streams.
    uint64_t state = seed;
    state = SplitMix64(&state) ^ FieldSeed(block->name);
    float* values = block->value.data();
    for (Eigen::Index i = 0; i < block->value.size(); ++i) {
      values[i] = block->init_limit * UniformSymmetric(&state);
    }
  }
}

void ParameterSet::FlattenValues(std::vector<float>* values) const {
  Flatten(blocks_, &ParamBlock::value, num_values_, values);
}

absl::Status ParameterSet::LoadValues(absl::Span<const float> values) {
  if (static_cast<int64_t>(values.size()) != num_values_) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoadValues got ", values.size(), " floats; the model has ", num_values_));
  }
  const float* in = values.data();
  for (const auto& block : blocks_) {
    std::memcpy(block->value.data(), in, block->value.size() * sizeof(float));
    in += block->value.size();
  }
  return absl::OkStatus();
}

void ParameterSet::FlattenGrads(std::vector<float>* grads) const {
  Flatten(blocks_, &ParamBlock::grad, num_values_, grads);
}

void ParameterSet::ZeroGrads() {
  for (const auto& block : blocks_) {
    block->grad.setZero();
  }
}

}  // namespace nn
}  // namespace granary
