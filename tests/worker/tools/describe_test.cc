#include "worker/tools/describe.h"

#include <zlib.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/temp_dir.h"
#include "worker/job_config.h"

namespace granary {
namespace {

using ::testing::HasSubstr;

constexpr char kData[] =
    "click\tuser_id\titem_id\tprice\thistory\n"
    "1\tu1\ti1\t3.5\ti2;i3\n"
    "0\tu2\ti2\t1.5\ti1\n"
    "1\tu3\ti3\t250.25\t\n";

TEST(DescribeTest, WritesConfigsTheRolesLoadFromAGzipFile) {
  const std::string dir = MakeTempDir("describe_test");
  const std::string input = dir + "/train-00.tsv.gz";
  gzFile gz = gzopen(input.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, kData, sizeof(kData) - 1), static_cast<int>(sizeof(kData) - 1));
  ASSERT_EQ(gzclose(gz), Z_OK);

  DescribeRun run;
  run.input = input;
  run.output_dir = dir + "/configs";
  absl::StatusOr<std::vector<std::string>> report = Describe(run);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->front(), HasSubstr("click: LABEL"));
  absl::StatusOr<JobSpec> job = LoadJobConfig(run.output_dir + "/" + kDescribedJobFile);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->job.model().has_dupn());
  EXPECT_EQ(job->dataset.columns_size(), 5);
  EXPECT_TRUE(LoadClusterConfig(run.output_dir + "/" + kDescribedClusterFile).ok());
  // The reasons stand at the top of the dataset config, as comments.
  EXPECT_THAT(ReadFile(run.output_dir + "/" + kDescribedDatasetFile),
              HasSubstr("# price: NUMERIC ("));
}

TEST(DescribeTest, BadInputIsNamed) {
  const std::string dir = MakeTempDir("describe_test");
  DescribeRun run;
  run.output_dir = dir + "/configs";
  run.input = dir + "/missing.tsv";
  EXPECT_THAT(Describe(run).status().message(), HasSubstr("missing.tsv"));
  run.input = dir + "/empty.tsv";
  std::ofstream(run.input).flush();
  EXPECT_THAT(Describe(run).status().message(), HasSubstr("empty.tsv: empty file, no header line"));
  run.input = dir + "/unlabelled.tsv";
  std::ofstream(run.input) << "city\tage\nparis\t31.5\n";
  EXPECT_THAT(Describe(run).status().message(), HasSubstr("--labels"));
  run.sample_lines = 0;
  EXPECT_THAT(Describe(run).status().message(), HasSubstr("sample_lines must be >= 1"));
}

// Runs build/<program> with `flags`; returns its exit code and its output (stdout and stderr).
int RunProgram(const std::string& program, const std::vector<std::string>& flags,
               const std::string& log_path, std::string* log) {
  std::vector<std::string> argv = {std::string(GRANARY_BINARY_DIR) + "/" + program};
  argv.insert(argv.end(), flags.begin(), flags.end());
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, log_path);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return -1;
  std::optional<int> code = child->WaitForExit(absl::Seconds(60));
  *log = child->ReadLog();
  return code.value_or(-1);
}

// `granary_worker --job=describe` is granary_describe's code path: the same three files and the
// same report from the same flags, without a scheduler to join.
TEST(DescribeTest, WorkerJobDescribeWritesWhatGranaryDescribeWrites) {
  const std::string dir = MakeTempDir("describe_test");
  const std::string input = dir + "/train-00.tsv";
  std::ofstream(input) << kData;
  std::string tool_log, worker_log;
  ASSERT_EQ(RunProgram("granary_describe",
                       {"--input=" + input, "--output_dir=" + dir + "/tool", "--labels=click"},
                       dir + "/tool.log", &tool_log),
            0)
      << tool_log;
  ASSERT_EQ(RunProgram("granary_worker",
                       {"--job=describe", "--input=" + input, "--output_dir=" + dir + "/worker",
                        "--labels=click"},
                       dir + "/worker.log", &worker_log),
            0)
      << worker_log;
  EXPECT_THAT(worker_log, HasSubstr("click: LABEL"));
  for (const char* file : {kDescribedDatasetFile, kDescribedJobFile, kDescribedClusterFile}) {
    const std::string written = ReadFile(dir + "/worker/" + file);
    EXPECT_FALSE(written.empty()) << file;
    EXPECT_EQ(written, ReadFile(dir + "/tool/" + file)) << file;
  }
  absl::StatusOr<JobSpec> job = LoadJobConfig(dir + "/worker/" + kDescribedJobFile);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->dataset.columns_size(), 5);

  // Without --input the worker says what is missing and fails.
  EXPECT_EQ(RunProgram("granary_worker", {"--job=describe", "--output_dir=" + dir + "/none"},
                       dir + "/none.log", &worker_log),
            1);
  EXPECT_THAT(worker_log, HasSubstr("--input and --output_dir are required"));
}

}  // namespace
}  // namespace granary
