#include "worker/job.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace granary {
namespace {

// Options whose scheduler does not exist: joining would wait the whole register timeout.
WorkerJobOptions Unjoinable() {
  WorkerJobOptions options;
  options.scheduler.scheduler_address = "127.0.0.1:1";
  options.scheduler.register_timeout = absl::Seconds(30);
  return options;
}

// A mistake in the job is reported before joining the cluster, so it costs no cluster time.
TEST(WorkerJobTest, MistakesAreRefusedBeforeJoining) {
  zmq::context_t context(1);
  const absl::Time start = absl::Now();

  WorkerJobOptions unknown = Unjoinable();
  unknown.job = "trian";
  absl::Status status = RunWorkerJob(&context, unknown);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("'trian'"), std::string::npos) << status;

  WorkerJobOptions staleness = Unjoinable();
  staleness.job = "train";
  staleness.trainer.max_staleness = -2;
  status = RunWorkerJob(&context, staleness);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("max_staleness must be >= 0"), std::string::npos) << status;

  WorkerJobOptions no_config = Unjoinable();
  no_config.job = "train";
  no_config.job_config = "/nonexistent/job.pbtxt";
  status = RunWorkerJob(&context, no_config);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/nonexistent/job.pbtxt"), std::string::npos) << status;

  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace granary
