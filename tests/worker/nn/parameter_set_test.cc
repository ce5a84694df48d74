#include "worker/nn/parameter_set.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/attention_pooling.h"
#include "worker/nn/dense.h"
#include "worker/nn/lstm.h"

namespace granary {
namespace nn {
namespace {

// A small model of every parameter-owning layer, built the same way every time.
struct SmallModel {
  explicit SmallModel(bool with_extra_layer = false)
      : lstm(&params, "lstm", 3, 4),
        attention(&params, "attention", 4, 2, 5),
        dense(&params, "head", 4, 1) {
    if (with_extra_layer) extra = std::make_unique<Dense>(&params, "extra", 2, 2);
  }
  ParameterSet params;
  Lstm lstm;
  AttentionPooling attention;
  Dense dense;
  std::unique_ptr<Dense> extra;
};

TEST(ParameterSetTest, CountsAndOrdersBlocks) {
  SmallModel model;
  std::vector<std::string> names;
  for (const auto& block : model.params.blocks()) names.push_back(block->name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"lstm/weight", "lstm/bias", "attention/state_weight",
                                      "attention/query_weight", "attention/bias",
                                      "attention/score_vector", "head/weight", "head/bias"}));
  EXPECT_EQ(model.params.num_values(), 7 * 16 + 16 + 4 * 5 + 2 * 5 + 5 + 5 + 4 + 1);
  EXPECT_EQ(model.params.Find("nope"), nullptr);
}

TEST(ParameterSetTest, InitializeIsDeterministicAndWithinGlorotLimits) {
  SmallModel a;
  SmallModel b;
  a.params.Initialize(42);
  b.params.Initialize(42);
  std::vector<float> values_a, values_b;
  a.params.FlattenValues(&values_a);
  b.params.FlattenValues(&values_b);
  EXPECT_EQ(values_a, values_b);

  const ParamBlock* weight = a.params.Find("head/weight");
  EXPECT_FLOAT_EQ(weight->init_limit, ParameterSet::GlorotLimit(4, 1));
  EXPECT_LE(weight->value.cwiseAbs().maxCoeff(), weight->init_limit);
  EXPECT_GT(weight->value.cwiseAbs().maxCoeff(), 0.0f);
  EXPECT_TRUE(a.params.Find("head/bias")->value.isZero());

  SmallModel c;
  c.params.Initialize(43);
  std::vector<float> values_c;
  c.params.FlattenValues(&values_c);
  EXPECT_NE(values_a, values_c);
}

TEST(ParameterSetTest, AddingALayerLeavesOtherBlocksUnchanged) {
  SmallModel plain;
  SmallModel extended(/*with_extra_layer=*/true);
  plain.params.Initialize(7);
  extended.params.Initialize(7);
  for (const auto& block : plain.params.blocks()) {
    EXPECT_EQ(block->value, extended.params.Find(block->name)->value) << block->name;
  }
}

TEST(ParameterSetTest, FlattenAndLoadRoundTrip) {
  SmallModel source;
  source.params.Initialize(1);
  std::vector<float> values;
  source.params.FlattenValues(&values);
  ASSERT_EQ(static_cast<int64_t>(values.size()), source.params.num_values());

  SmallModel target;
  ASSERT_TRUE(target.params.LoadValues(values).ok());
  for (const auto& block : source.params.blocks()) {
    EXPECT_EQ(block->value, target.params.Find(block->name)->value) << block->name;
  }
  std::vector<float> again;
  target.params.FlattenValues(&again);
  EXPECT_EQ(values, again);
}

TEST(ParameterSetTest, LoadValuesRejectsAWrongSizeAndChangesNothing) {
  SmallModel model;
  model.params.Initialize(1);
  std::vector<float> before;
  model.params.FlattenValues(&before);
  const std::vector<float> short_values(before.size() - 1, 5.0f);
  const absl::Status status = model.params.LoadValues(short_values);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  std::vector<float> after;
  model.params.FlattenValues(&after);
  EXPECT_EQ(before, after);
}

TEST(ParameterSetTest, FlattenGradsFollowsTheValueLayoutAndZeroGradsClears) {
  SmallModel model;
  int64_t next = 0;
  for (const auto& block : model.params.blocks()) {
    for (Eigen::Index i = 0; i < block->grad.size(); ++i) block->grad.data()[i] = next++;
  }
  std::vector<float> grads;
  model.params.FlattenGrads(&grads);
  ASSERT_EQ(static_cast<int64_t>(grads.size()), model.params.num_values());
  for (size_t i = 0; i < grads.size(); ++i) EXPECT_EQ(grads[i], static_cast<float>(i));
  model.params.ZeroGrads();
  model.params.FlattenGrads(&grads);
  for (float grad : grads) EXPECT_EQ(grad, 0.0f);
}

TEST(ParameterSetDeathTest, DuplicateNameIsABug) {
  ParameterSet params;
  Dense first(&params, "layer", 2, 2);
  EXPECT_DEATH(Dense(&params, "layer", 2, 2), "duplicate parameter block name layer/weight");
}

}  // namespace
}  // namespace nn
}  // namespace granary
