// The model library's promise that a steady batch shape allocates nothing after the first
// batch, checked on a DUPN-shaped model at the benchmark's sizes: three sequence fields
// gathered side by side, an LSTM, attention with the target item as query, a user MLP and two
// heads.
//
// Allocations are counted by interposing malloc for this test binary: Eigen and operator new
// both end in malloc, so a temporary anywhere in Forward or Backward shows up. Under a
// sanitizer the interposer is not compiled and the test skips: ASan owns malloc, and a second
// definition beside its own kills the binary before main ("CHECK failed: tsd_key_inited").
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/sanitizer.h"
#include "worker/nn/activation.h"
#include "worker/nn/attention_pooling.h"
#include "worker/nn/dense.h"
#include "worker/nn/embedding_pooling.h"
#include "worker/nn/field_self_attention.h"
#include "worker/nn/interest_routing.h"
#include "worker/nn/label_aware_attention.h"
#include "worker/nn/loss.h"
#include "worker/nn/lstm.h"
#include "worker/nn/parameter_set.h"

namespace {
thread_local bool counting_mallocs = false;
thread_local int64_t mallocs_counted = 0;
}  // namespace

#if !GRANARY_UNDER_SANITIZER
extern "C" void* __libc_malloc(size_t size);

extern "C" void* malloc(size_t size) noexcept {
  if (counting_mallocs) ++mallocs_counted;
  return __libc_malloc(size);
}
#endif

namespace granary {
namespace nn {
namespace {

constexpr int kBatch = 256;
constexpr int kSteps = 20;
constexpr int kFields = 3;
constexpr int kEmbeddingDim = 16;
constexpr int kRowsPerField = 3000;
constexpr int kHiddenDim = 32;
constexpr int kAttentionDim = 32;
constexpr int kUserDim = 64;
constexpr int kClasses = 5;
constexpr int kTargetValues = 2;  // e.g. target item id and its category, mean-pooled

// The pulled rows and ids of one batch, as a trainer would hold them.
struct Batch {
  explicit Batch(std::mt19937* rng) {
    std::uniform_int_distribution<int32_t> row(0, kRowsPerField - 1);
    std::uniform_int_distribution<int32_t> length(1, kSteps);
    std::bernoulli_distribution coin(0.5);
    for (int f = 0; f < kFields; ++f) {
      field_rows.push_back(Matrix::Random(kRowsPerField, kEmbeddingDim));
      step_row_ids.emplace_back(kBatch * kSteps, kPaddingRow);
    }
    target_rows = Matrix::Random(kRowsPerField, kEmbeddingDim);
    target_offsets.push_back(0);
    for (int b = 0; b < kBatch; ++b) {
      lengths.push_back(length(*rng));
      for (int f = 0; f < kFields; ++f) {
        for (int t = 0; t < lengths[b]; ++t) step_row_ids[f][b * kSteps + t] = row(*rng);
      }
      for (int v = 0; v < kTargetValues; ++v) target_row_ids.push_back(row(*rng));
      target_offsets.push_back(static_cast<int32_t>(target_row_ids.size()));
      clicks.push_back(coin(*rng) ? 1.0f : 0.0f);
      classes.push_back(b % kClasses);
    }
  }
  MultiValuedField target() const { return {target_offsets, target_row_ids, {}}; }

  std::vector<Matrix> field_rows;
  std::vector<std::vector<int32_t>> step_row_ids;
  std::vector<int32_t> lengths;
  Matrix target_rows;
  std::vector<int32_t> target_offsets;
  std::vector<int32_t> target_row_ids;
  std::vector<float> clicks;
  std::vector<int32_t> classes;
};

class DupnModel {
 public:
  DupnModel()
      : lstm_(&params_, "lstm", kFields * kEmbeddingDim, kHiddenDim),
        attention_(&params_, "attention", kHiddenDim, kEmbeddingDim, kAttentionDim),
        user_layer_(&params_, "user", kHiddenDim + kEmbeddingDim, kUserDim),
        user_activation_(ActivationKind::kRelu),
        click_head_(&params_, "click", kUserDim, 1),
        class_head_(&params_, "class", kUserDim, kClasses) {
    params_.Initialize(1);
  }

  // One forward and backward pass; returns the summed loss.
  double Step(const Batch& batch) {
    params_.ZeroGrads();
    sequence_.resize(kSteps * kBatch, kFields * kEmbeddingDim);
    for (int f = 0; f < kFields; ++f) {
      GatherSequence(batch.field_rows[f], batch.step_row_ids[f], kSteps,
                     sequence_.middleCols(f * kEmbeddingDim, kEmbeddingDim));
    }
    query_.resize(kBatch, kEmbeddingDim);
    PoolEmbeddings(batch.target_rows, batch.target(), Pooling::kMean, query_);
    const Matrix& states = lstm_.Forward(sequence_, batch.lengths);
    const Matrix& user_interest = attention_.Forward(states, query_, batch.lengths);
    user_input_.resize(kBatch, kHiddenDim + kEmbeddingDim);
    user_input_.leftCols(kHiddenDim) = user_interest;
    user_input_.rightCols(kEmbeddingDim) = query_;
    const Matrix& user = user_activation_.Forward(user_layer_.Forward(user_input_));
    const LossValue click_loss =
        SigmoidBinaryCrossEntropy(click_head_.Forward(user), batch.clicks, {}, &d_click_logits_);
    const LossValue class_loss =
        SoftmaxCrossEntropy(class_head_.Forward(user), batch.classes, {}, &d_class_logits_);

    d_user_ = click_head_.Backward(d_click_logits_);
    d_user_ += class_head_.Backward(d_class_logits_);
    const Matrix& d_user_input = user_layer_.Backward(user_activation_.Backward(d_user_));
    d_user_interest_ = d_user_input.leftCols(kHiddenDim);
    attention_.Backward(d_user_interest_);
    const Matrix& d_sequence = lstm_.Backward(&attention_.d_states(), nullptr);
    d_field_rows_.resize(kFields);
    for (int f = 0; f < kFields; ++f) {
      d_field_rows_[f].setZero(kRowsPerField, kEmbeddingDim);
      GatherSequenceBackward(d_sequence.middleCols(f * kEmbeddingDim, kEmbeddingDim),
                             batch.step_row_ids[f], kSteps, d_field_rows_[f]);
    }
    d_query_ = d_user_input.rightCols(kEmbeddingDim);
    d_query_ += attention_.d_query();
    d_target_rows_.setZero(kRowsPerField, kEmbeddingDim);
    PoolEmbeddingsBackward(d_query_, batch.target(), Pooling::kMean, d_target_rows_);
    return click_loss.mean() + class_loss.mean();
  }

 private:
  ParameterSet params_;
  Lstm lstm_;
  AttentionPooling attention_;
  Dense user_layer_;
  Activation user_activation_;
  Dense click_head_;
  Dense class_head_;
  Matrix sequence_, query_, user_input_, d_click_logits_, d_class_logits_, d_user_,
      d_user_interest_, d_query_, d_target_rows_;
  std::vector<Matrix> d_field_rows_;
};

TEST(ModelAllocationTest, SteadyBatchesAllocateNothingAfterTheFirst) {
  GRANARY_SKIP_UNDER_SANITIZER("mallocs are counted by interposing malloc, which ASan owns");
  std::mt19937 rng(43);
  const Batch batch(&rng);
  DupnModel model;
  const double first_loss = model.Step(batch);
  EXPECT_TRUE(std::isfinite(first_loss));

  mallocs_counted = 0;
  counting_mallocs = true;
  const double second_loss = model.Step(batch);
  counting_mallocs = false;
  EXPECT_EQ(mallocs_counted, 0);
  EXPECT_EQ(first_loss, second_loss);
}

// The AutoInt and MIND layers at the MovieLens configs' sizes: 10 fields of 16 through three
// interacting layers of 2 heads of 16; 20 behaviours routed into 4 interests, mixed by the
// label-aware attention. The second pass of the same shapes must not allocate.
TEST(ModelAllocationTest, AutoIntAndMindLayersAllocateNothingAfterTheFirstBatch) {
  GRANARY_SKIP_UNDER_SANITIZER("mallocs are counted by interposing malloc, which ASan owns");
  constexpr int kAutoIntFields = 10;
  constexpr int kInterests = 4;
  ParameterSet params;
  FieldSelfAttention first(&params, "autoint.0", kAutoIntFields, kEmbeddingDim, 2, 16);
  FieldSelfAttention second(&params, "autoint.1", kAutoIntFields, 32, 2, 16);
  InterestRoutingOptions options;
  options.num_interests = kInterests;
  InterestRouting routing(&params, "routing", kEmbeddingDim, kEmbeddingDim, options);
  LabelAwareAttention label_aware(kInterests, kEmbeddingDim, 2.0f);
  params.Initialize(3);
  std::mt19937 rng(7);
  const Batch batch(&rng);
  const Matrix fields = Matrix::Random(kBatch, kAutoIntFields * kEmbeddingDim);
  const Matrix behaviours = Matrix::Random(kSteps * kBatch, kEmbeddingDim);
  const Matrix target = Matrix::Random(kBatch, kEmbeddingDim);
  const Matrix d_interacted = Matrix::Random(kBatch, kAutoIntFields * 32);
  const Matrix d_user = Matrix::Random(kBatch, kEmbeddingDim);
  Matrix d_interests;
  auto step = [&] {
    params.ZeroGrads();
    const Matrix& interacted = second.Forward(first.Forward(fields));
    first.Backward(second.Backward(d_interacted));
    const Matrix& interests = routing.Forward(behaviours, batch.lengths);
    label_aware.Forward(interests, routing.interest_counts(), target);
    label_aware.Backward(d_user);
    d_interests = label_aware.d_interests();
    routing.Backward(d_interests);
    return interacted.sum();
  };
  const float first_sum = step();
  mallocs_counted = 0;
  counting_mallocs = true;
  const float second_sum = step();
  counting_mallocs = false;
  EXPECT_EQ(mallocs_counted, 0);
  EXPECT_EQ(first_sum, second_sum);
}

}  // namespace
}  // namespace nn
}  // namespace granary
