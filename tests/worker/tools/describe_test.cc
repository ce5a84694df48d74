#include "worker/tools/describe.h"

#include <zlib.h>

#include <fstream>
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

}  // namespace
}  // namespace granary
