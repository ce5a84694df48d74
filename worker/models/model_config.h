// The rules and the defaults of a ModelConfig (common/proto/job.proto) read against its dataset
// config, one home for each: which column roles each field of an architecture may name, the
// widths, the tasks, and the value of every optional field left unset.
//
// LoadJobConfig (worker/job_config.h) applies them to a job file, naming file:line of the
// field that breaks a rule; CreateModel (model_factory.h) fills the defaults of a config built
// in code, and the model parts (EmbeddedFields, NumericFields, the architectures) check the
// columns they are given with ColumnFor. A model reads its config as it is: it applies no
// default of its own.
//
// Thread-safe: pure functions of their arguments.
#ifndef GRANARY_WORKER_MODELS_MODEL_CONFIG_H_
#define GRANARY_WORKER_MODELS_MODEL_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config_location.h"
#include "common/proto/dataset.pb.h"
#include "common/proto/job.pb.h"

namespace granary {

// Defaults of the job.proto fields of the same names, set by FillModelDefaults. (The frequency
// estimator's, frequency_buckets and frequency_learning_rate, are FrequencyEstimatorOptions'.)
inline constexpr char kDefaultSparseTable[] = "emb";
inline constexpr char kDefaultDenseTable[] = "dense";
inline constexpr float kDefaultLossWeight = 1.0f;               // TaskConfig
inline constexpr float kDefaultTemperature = 0.05f;             // RetrievalConfig
inline constexpr uint32_t kDefaultNumNegatives = 4;             // TwoTowerConfig
inline constexpr uint64_t kDefaultNegativeSeed = 1;             // TwoTowerConfig
inline constexpr float kDefaultAmmWeight = 0.5f;                // DatConfig, user and item
inline constexpr float kDefaultCategoryAlignmentWeight = 0.1f;  // DatConfig
inline constexpr float kDefaultSimilarityWeight = 1.0f;         // AtnnConfig
inline constexpr char kDefaultCtcvrTask[] = "ctcvr";            // EsmmConfig
inline constexpr float kDefaultCtcvrLossWeight = 1.0f;          // EsmmConfig
// EsmmConfig: pCVR is trained through pCTCVR only, unless the CVR task says otherwise.
inline constexpr float kDefaultEsmmCvrLossWeight = 0.0f;
inline constexpr uint32_t kDefaultNumInterests = 4;       // MindConfig
inline constexpr uint32_t kDefaultRoutingIterations = 3;  // MindConfig
inline constexpr float kDefaultAttentionPower = 2.0f;     // MindConfig
// Bounds on MindConfig beyond which a value is a typo, not a model: the paper uses K <= 8 and
// 3 iterations, and each interest costs a pass of the per-interest MLP.
inline constexpr uint32_t kMaxNumInterests = 64;
inline constexpr uint32_t kMaxRoutingIterations = 20;
inline constexpr uint32_t kDefaultRalmAttentionHidden = 16;  // RalmUserConfig
// Bound on RalmUserConfig.attention_hidden beyond which it is a typo: the merge's hidden layer
// scores a handful of field vectors of embedding_dim floats.
inline constexpr uint32_t kMaxRalmAttentionHidden = 4096;

// How a model reads a column. Each use admits the roles below and no other.
enum class ColumnUse {
  // Mean-pooled embeddings (EmbeddedFields): CATEGORICAL, MULTI_CATEGORICAL, or a SEQUENCE
  // with a CATEGORICAL step field.
  kPooled,
  // Embeddings of its values: CATEGORICAL or MULTI_CATEGORICAL (DUPN's profile and target
  // item, DAT's category).
  kCategorical,
  // Its values as they are (NumericFields): NUMERIC.
  kNumeric,
  // A behaviour sequence (DUPN): SEQUENCE.
  kSequence,
};

// The column of `dataset` named `name`, or null.
const proto::ColumnConfig* FindDatasetColumn(const proto::DatasetConfig& dataset,
                                             const std::string& name);

// The column of `dataset` named `name`, if `use` admits its role. InvalidArgument "no column
// '<name>' in the dataset config" or "column '<name>' is not <the roles of use>" otherwise.
absl::StatusOr<const proto::ColumnConfig*> ColumnFor(const proto::DatasetConfig& dataset,
                                                     const std::string& name, ColumnUse use);

// Checks `model`, whose location is `at`, against `dataset`: embedding_dim >= 1 and one
// architecture:
//   dupn: user_fields and item_fields >= 1 each, kCategorical; behavior_column kSequence;
//         lstm_hidden and attention_hidden >= 1; >= 1 user_mlp layer;
//   shared_bottom / mmoe: >= 1 field, each kPooled; >= 1 bottom_mlp / expert_mlp layer;
//         num_experts >= 1;
//   autoint: >= 1 field, each kPooled; attention_layers, attention_heads and
//         attention_head_dim >= 1;
//   dupn, shared_bottom, mmoe, autoint: every numeric_fields entry kNumeric;
//   two_tower, dat, atnn, mind, ralm_user: as ValidateRetrievalModel;
//   esmm: fields and numeric_fields as shared_bottom's; exactly two tasks, its ctr_task and
//         cvr_task, both BINARY; ctcvr_task not the name of one; ctcvr_loss_weight >= 0;
// all widths >= 1; >= 1 task, each uniquely named with a head kind and a LABEL column,
// num_classes >= 2 exactly for MULTICLASS, loss_weight >= 0. InvalidArgument "where: reason"
// for the first violation, where = at.At() of the field that breaks the rule.
absl::Status ValidateModelConfig(const proto::ModelConfig& model,
                                 const proto::DatasetConfig& dataset, const ConfigLocation& at);

// The rules of the retrieval architectures (OK for the others): one BINARY task; the id
// columns are CATEGORICAL columns of the dataset; a tower has >= 1 kPooled field and >= 1
// layer, widths >= 1, and both towers end at the same width; temperature > 0; two_tower and
// dat: a loss, frequency_learning_rate in (0, 1]; dat: the towers end at embedding_dim,
// weights >= 0, category_column kCategorical; atnn: >= 1 statistics column, each kNumeric,
// similarity_weight >= 0; mind: behavior_column kSequence with >= 1 CATEGORICAL step field,
// num_interests <= kMaxNumInterests, routing_iterations <= kMaxRoutingIterations (0: the
// default), attention_power >= 1, frequency_learning_rate in (0, 1]; ralm_user: >= 1 user
// field (kPooled) or numeric field (kNumeric with a min-max transform, min and max, in the
// dataset config), >= 1 user_mlp layer ending at the item tower's width, attention_hidden <=
// kMaxRalmAttentionHidden, frequency_learning_rate in (0, 1]. InvalidArgument naming the
// field as "model.<arch>.<field>".
absl::Status ValidateRetrievalModel(const proto::ModelConfig& model,
                                    const proto::DatasetConfig& dataset);

// Sets every unset optional field of `model` to its default (the constants above). Idempotent.
void FillModelDefaults(proto::ModelConfig* model);

}  // namespace granary

#endif  // GRANARY_WORKER_MODELS_MODEL_CONFIG_H_
