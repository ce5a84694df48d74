// What the retrieval model tests (two_tower, mind) share: a small batch of six samples over
// click, user_id, age, item_id and genres. Sample 2 is a negative (it takes no part in the
// in-batch losses), sample 3 repeats item 7 (an accidental hit for sample 0). Positives' first
// genres: 21 (samples 0, 1, 3, the major category) and 23 (samples 4, 5).
#ifndef GRANARY_TESTS_TESTING_RETRIEVAL_TESTING_H_
#define GRANARY_TESTS_TESTING_RETRIEVAL_TESTING_H_

#include "worker/batch.h"

namespace granary {
namespace testing_batch {

// The dataset config of RetrievalSmallBatch's columns.
inline constexpr char kRetrievalDataset[] = R"(
columns { name: "click" role: LABEL }
columns { name: "user_id" role: CATEGORICAL }
columns { name: "age" role: CATEGORICAL }
columns { name: "item_id" role: CATEGORICAL }
columns { name: "genres" role: MULTI_CATEGORICAL }
)";

inline Batch RetrievalSmallBatch() {
  Batch batch;
  batch.size = 6;
  batch.labels = {{"click", {1, 1, 0, 1, 1, 1}, {1, 1, 1, 1, 1, 1}}};
  batch.categoricals = {{"user_id", {11, 12, 11, 13, 14, 15}, {1, 1, 1, 1, 1, 1}},
                        {"age", {31, 32, 31, 31, 33, 32}, {1, 1, 1, 1, 1, 1}},
                        {"item_id", {7, 8, 9, 7, 10, 12}, {1, 1, 1, 1, 1, 1}}};
  batch.multi_categoricals = {{"genres", {0, 2, 3, 4, 6, 7, 8}, {21, 22, 21, 23, 21, 22, 23, 23}}};
  return batch;
}

}  // namespace testing_batch
}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_RETRIEVAL_TESTING_H_
