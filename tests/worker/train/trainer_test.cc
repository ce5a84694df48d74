#include "worker/train/trainer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/train/batch_pipeline.h"

namespace granary {
namespace {

// The view of a replacement worker that joined once `released` barriers were released.
proto::ClusterView JoinedView(const std::vector<std::string>& released) {
  proto::ClusterView view;
  view.set_joined_running_job(true);
  for (const std::string& name : released) view.add_released_barriers(name);
  return view;
}

TEST(MaxBatchesPastResumeTest, PipelineDepthPerThreadCappedByStaleness) {
  // Asynchronous: the batches each pipeline holds.
  EXPECT_EQ(MaxBatchesPastResume(/*threads=*/1, /*max_staleness=*/-1), kPipelineBatchesTaken);
  EXPECT_EQ(MaxBatchesPastResume(4, -1), 4 * kPipelineBatchesTaken);
  // Bounded staleness: max_staleness + 1 per thread, never more than the pipeline holds.
  EXPECT_EQ(MaxBatchesPastResume(1, 0), 1);
  EXPECT_EQ(MaxBatchesPastResume(2, 0), 2);
  EXPECT_EQ(MaxBatchesPastResume(2, 1), 4);
  EXPECT_EQ(MaxBatchesPastResume(2, 100), 2 * kPipelineBatchesTaken);
}

TEST(FindJoinPointTest, AWorkerOfTheFormationDoesEveryStep) {
  proto::ClusterView view;
  view.add_released_barriers("eval-epoch-1");  // ignored: not a replacement
  const JoinPoint join = FindJoinPoint(view, 3, /*has_eval_files=*/true);
  EXPECT_TRUE(join.evaluate_before_training);
  EXPECT_EQ(join.first_epoch, 1);
  EXPECT_TRUE(join.retrieval_evaluation);
}

TEST(FindJoinPointTest, AReplacementSkipsTheStepsWhoseBarrierWasReleased) {
  // Nothing released yet: it does everything, the evaluation before training included.
  JoinPoint join = FindJoinPoint(JoinedView({}), 3, true);
  EXPECT_TRUE(join.evaluate_before_training);
  EXPECT_EQ(join.first_epoch, 1);
  // The evaluation before training is over; epoch 1 is not.
  join = FindJoinPoint(JoinedView({"eval-epoch-0"}), 3, true);
  EXPECT_FALSE(join.evaluate_before_training);
  EXPECT_EQ(join.first_epoch, 1);
  // Epoch 1 trained but its evaluation not over: it joins epoch 1 (and evaluates it).
  join = FindJoinPoint(JoinedView({"eval-epoch-0", "train-epoch-1"}), 3, true);
  EXPECT_FALSE(join.evaluate_before_training);
  EXPECT_EQ(join.first_epoch, 1);
  join = FindJoinPoint(JoinedView({"eval-epoch-0", "train-epoch-1", "eval-epoch-1"}), 3, true);
  EXPECT_EQ(join.first_epoch, 2);
  EXPECT_TRUE(join.retrieval_evaluation);
  // Without eval files an epoch ends with its training barrier; the oldest names may have been
  // forgotten (a bounded list): the newest released one decides.
  join = FindJoinPoint(JoinedView({"train-epoch-2"}), 3, false);
  EXPECT_FALSE(join.evaluate_before_training);
  EXPECT_EQ(join.first_epoch, 3);
  // Every epoch over; the retrieval evaluation not yet, then that too.
  join = FindJoinPoint(JoinedView({"eval-epoch-3"}), 3, true);
  EXPECT_EQ(join.first_epoch, 4);
  EXPECT_TRUE(join.retrieval_evaluation);
  join = FindJoinPoint(JoinedView({"eval-epoch-3", "retrieval-eval"}), 3, true);
  EXPECT_FALSE(join.retrieval_evaluation);
}

}  // namespace
}  // namespace granary
