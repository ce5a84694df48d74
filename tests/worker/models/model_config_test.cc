#include "worker/models/model_config.h"

#include <string>

#include "common/config.h"
#include "gtest/gtest.h"
#include "tests/testing/model_testing.h"
#include "worker/models/frequency_estimator.h"

namespace granary {
namespace {

TEST(ColumnForTest, EachUseAdmitsItsRolesAndNamesTheOthers) {
  const proto::DatasetConfig dataset = testing_batch::SmallDataset();
  struct Case {
    const char* column;
    ColumnUse use;
    bool admitted;
  };
  for (const Case& c :
       {Case{"user_id", ColumnUse::kPooled, true}, Case{"tags", ColumnUse::kPooled, true},
        Case{"history", ColumnUse::kPooled, true}, Case{"views", ColumnUse::kPooled, false},
        Case{"tags", ColumnUse::kCategorical, true},
        Case{"history", ColumnUse::kCategorical, false}, Case{"views", ColumnUse::kNumeric, true},
        Case{"click", ColumnUse::kNumeric, false}, Case{"history", ColumnUse::kSequence, true},
        Case{"item_id", ColumnUse::kSequence, false}}) {
    absl::StatusOr<const proto::ColumnConfig*> column = ColumnFor(dataset, c.column, c.use);
    EXPECT_EQ(column.ok(), c.admitted) << c.column << " " << static_cast<int>(c.use);
    if (column.ok()) {
      EXPECT_EQ((*column)->name(), c.column);
    } else {
      EXPECT_NE(column.status().message().find(std::string("column '") + c.column + "' is not"),
                std::string::npos)
          << column.status();
    }
  }
  absl::StatusOr<const proto::ColumnConfig*> missing =
      ColumnFor(dataset, "nope", ColumnUse::kNumeric);
  EXPECT_TRUE(absl::IsInvalidArgument(missing.status()));
  EXPECT_NE(missing.status().message().find("no column 'nope' in the dataset config"),
            std::string::npos)
      << missing.status();
}

TEST(ColumnForTest, ASequenceWithoutACategoricalStepIsNotPooled) {
  proto::DatasetConfig dataset = testing_batch::SmallDataset();
  proto::ColumnConfig* ratings = dataset.add_columns();
  ratings->set_name("ratings");
  ratings->set_role(proto::ColumnConfig::SEQUENCE);
  ratings->add_step_fields()->set_name("rating");
  ratings->mutable_step_fields(0)->set_kind(proto::StepFieldConfig::NUMERIC);
  EXPECT_FALSE(ColumnFor(dataset, "ratings", ColumnUse::kPooled).ok());
  EXPECT_TRUE(ColumnFor(dataset, "ratings", ColumnUse::kSequence).ok());
}

proto::ModelConfig Parse(const std::string& text) {
  proto::ModelConfig model;
  EXPECT_TRUE(ParseTextProto(text, "model", &model).ok());
  return model;
}

TEST(FillModelDefaultsTest, FillsEveryUnsetFieldOfTheArchitectureOnly) {
  proto::ModelConfig model = Parse(R"(
    embedding_dim: 4
    dat { towers { retrieval { user_id_column: "user_id" } } amm_item_weight: 0.25 }
    tasks { name: "click" head: BINARY label_column: "click" })");
  FillModelDefaults(&model);
  EXPECT_EQ(model.sparse_table(), kDefaultSparseTable);
  EXPECT_EQ(model.dense_table(), kDefaultDenseTable);
  EXPECT_EQ(model.tasks(0).loss_weight(), kDefaultLossWeight);
  const proto::TwoTowerConfig& towers = model.dat().towers();
  EXPECT_EQ(towers.retrieval().temperature(), kDefaultTemperature);
  EXPECT_EQ(towers.num_negatives(), kDefaultNumNegatives);
  EXPECT_EQ(towers.negative_seed(), kDefaultNegativeSeed);
  EXPECT_EQ(towers.frequency_buckets(),
            static_cast<uint32_t>(FrequencyEstimatorOptions().num_buckets));
  EXPECT_EQ(towers.frequency_learning_rate(), FrequencyEstimatorOptions().learning_rate);
  EXPECT_EQ(model.dat().amm_user_weight(), kDefaultAmmWeight);
  EXPECT_EQ(model.dat().amm_item_weight(), 0.25f);
  EXPECT_EQ(model.dat().category_alignment_weight(), kDefaultCategoryAlignmentWeight);
  const std::string once = model.SerializeAsString();
  FillModelDefaults(&model);
  EXPECT_EQ(model.SerializeAsString(), once);

  proto::ModelConfig atnn = Parse(R"(atnn { similarity_weight: 0 })");
  FillModelDefaults(&atnn);
  EXPECT_EQ(atnn.atnn().retrieval().temperature(), kDefaultTemperature);
  EXPECT_EQ(atnn.atnn().similarity_weight(), 0.0f);
  proto::ModelConfig dupn = Parse(R"(dupn { lstm_hidden: 2 })");
  FillModelDefaults(&dupn);
  EXPECT_TRUE(dupn.has_dupn());
}

TEST(ValidateModelConfigTest, WithoutAParseTreeErrorsNameTheSource) {
  const proto::ModelConfig model =
      Parse(R"(embedding_dim: 4 shared_bottom { fields: "views" bottom_mlp: 4 })");
  const std::string source = "in code";
  absl::Status status = ValidateModelConfig(model, testing_batch::SmallDataset(),
                                            ConfigLocation(model, nullptr, source));
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_EQ(status.message(),
            "in code: column 'views' is not CATEGORICAL, MULTI_CATEGORICAL or a SEQUENCE with a "
            "CATEGORICAL step field");
}

}  // namespace
}  // namespace granary
