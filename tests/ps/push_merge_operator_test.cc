#include "ps/push_merge_operator.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ps/row_store.h"

namespace granary {
namespace {

proto::TableConfig AdamTable(const std::string& name, int dim) {
  proto::TableConfig config;
  config.set_name(name);
  config.set_dim(dim);
  config.mutable_initializer()->set_kind(proto::InitializerConfig::UNIFORM);
  config.mutable_initializer()->set_scale(0.5f);
  config.mutable_optimizer()->mutable_adam()->set_learning_rate(0.01f);
  return config;
}

// A row record in aligned storage.
class Record {
 public:
  explicit Record(const RowLayout& layout)
      : layout_(layout), words_((layout.row_bytes() + 7) / 8) {}
  char* data() { return reinterpret_cast<char*>(words_.data()); }
  std::string bytes() const {
    return std::string(reinterpret_cast<const char*>(words_.data()), layout_.row_bytes());
  }

 private:
  RowLayout layout_;
  std::vector<uint64_t> words_;
};

// Calls the operator's FullMergeV2 on `key` with `existing` (null: no stored record).
bool Merge(const rocksdb::MergeOperator& op, uint64_t key, const std::string* existing,
           const std::vector<std::string>& operands, std::string* merged) {
  const std::string encoded_key = RowStore::EncodeKey(key);
  const rocksdb::Slice key_slice(encoded_key);
  rocksdb::Slice existing_slice;
  if (existing != nullptr) existing_slice = rocksdb::Slice(*existing);
  std::vector<rocksdb::Slice> operand_slices(operands.begin(), operands.end());
  rocksdb::MergeOperator::MergeOperationInput in(
      key_slice, existing != nullptr ? &existing_slice : nullptr, operand_slices, nullptr);
  rocksdb::Slice existing_operand;
  rocksdb::MergeOperator::MergeOperationOutput out(*merged, existing_operand);
  return op.FullMergeV2(in, &out);
}

std::string Operand(const RowLayout& layout, uint32_t day, uint64_t version,
                    const std::vector<float>& grad) {
  std::string operand(PushOperandBytes(layout), '\0');
  EncodePushOperand(day, version, grad.data(), layout.dim(), operand.data());
  return operand;
}

// The merge leaves exactly the row a push to a cached row leaves: a new row's record, then
// each push's stamp and optimizer update in order, whether the pushes come as separate
// operands or back to back in one.
TEST(PushMergeOperatorTest, FoldsPushesInOrderOntoANewRowAsACachedPushWould) {
  constexpr int kDim = 3;
  constexpr uint64_t kKey = 0x1234;
  const proto::TableConfig config = AdamTable("t", kDim);
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeTableOptimizer(config);
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  const RowLayout layout(kDim, (*optimizer)->num_slots());
  const std::vector<std::vector<float>> grads = {{1, -2, 3}, {0.5f, 0, -1}, {-4, 4, 2}};

  Record expected(layout);
  InitializeRecord(config, **optimizer, layout, kKey, expected.data());
  for (size_t p = 0; p < grads.size(); ++p) {
    RowMeta* meta = layout.meta(expected.data());
    StampPush(/*day=*/7, /*version=*/100 + p, meta);
    const RowUpdate update{layout.values(expected.data()), layout.slots(expected.data()), meta,
                           grads[p].data()};
    (*optimizer)->Apply(absl::MakeConstSpan(&update, 1), kDim);
  }
  EXPECT_EQ(layout.meta(expected.data())->update_count, 3u);
  EXPECT_EQ(layout.meta(expected.data())->version, 102u);

  absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> op = NewPushMergeOperator(config);
  ASSERT_TRUE(op.ok()) << op.status();
  const std::string first = Operand(layout, 7, 100, grads[0]);
  const std::string second = Operand(layout, 7, 101, grads[1]);
  const std::string third = Operand(layout, 7, 102, grads[2]);
  std::string separate, back_to_back;
  ASSERT_TRUE(Merge(**op, kKey, nullptr, {first, second, third}, &separate));
  ASSERT_TRUE(Merge(**op, kKey, nullptr, {first + second, third}, &back_to_back));
  EXPECT_EQ(separate, expected.bytes());
  EXPECT_EQ(back_to_back, expected.bytes());

  // ApplyPushOperand is the same fold, one operand at a time.
  Record applied(layout);
  InitializeRecord(config, **optimizer, layout, kKey, applied.data());
  for (const std::string* operand : {&first, &second, &third}) {
    ApplyPushOperand(**optimizer, layout, operand->data(), applied.data());
  }
  EXPECT_EQ(applied.bytes(), expected.bytes());

  // Onto a stored record: the fold continues from it.
  std::string continued;
  const std::string stored = separate;
  ASSERT_TRUE(Merge(**op, kKey, &stored, {first}, &continued));
  ApplyPushOperand(**optimizer, layout, first.data(), applied.data());
  EXPECT_EQ(continued, applied.bytes());
}

TEST(PushMergeOperatorTest, WrongSizedRecordOrOperandFailsTheMerge) {
  const proto::TableConfig config = AdamTable("t", 2);
  absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> op = NewPushMergeOperator(config);
  ASSERT_TRUE(op.ok()) << op.status();
  const RowLayout layout(2, 2);
  const std::string operand = Operand(layout, 1, 1, {1, 1});
  std::string merged;
  const std::string short_record = "short";
  EXPECT_FALSE(Merge(**op, 1, &short_record, {operand}, &merged));
  EXPECT_FALSE(Merge(**op, 1, nullptr, {operand.substr(1)}, &merged));
  EXPECT_FALSE(Merge(**op, 1, nullptr, {std::string()}, &merged));
  EXPECT_TRUE(Merge(**op, 1, nullptr, {operand}, &merged));
}

TEST(PushMergeOperatorTest, ConfigWithoutOptimizerIsAnErrorNamingTheTable) {
  proto::TableConfig config;
  config.set_name("no_optimizer");
  config.set_dim(4);
  absl::StatusOr<std::shared_ptr<rocksdb::MergeOperator>> op = NewPushMergeOperator(config);
  ASSERT_FALSE(op.ok());
  EXPECT_EQ(op.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(op.status().message().find("table 'no_optimizer'"), std::string::npos) << op.status();
}

}  // namespace
}  // namespace granary
