// Fuzz target: the job config parser (worker/job_config.h, with the model rules of
// worker/models/model_config.h). The input is a job config's text, parsed and checked as
// LoadJobConfig does: an inline dataset config is checked and used; a named one is not
// followed (a fuzzed path could name /dev/zero) and the MovieLens dataset config stands in
// for it, the one the seeds (configs/movielens_*.pbtxt) name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/config.h"
#include "worker/job_config.h"

namespace {

constexpr char kSource[] = "fuzz_job.pbtxt";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // GRANARY_FUZZ_DATASET_CONFIG: configs/movielens_dataset.pbtxt (fuzz/CMakeLists.txt).
  static const granary::proto::DatasetConfig* const named = [] {
    absl::StatusOr<granary::proto::DatasetConfig> loaded =
        granary::LoadDatasetConfig(GRANARY_FUZZ_DATASET_CONFIG);
    if (!loaded.ok()) std::abort();
    return new granary::proto::DatasetConfig(*std::move(loaded));
  }();

  granary::proto::JobConfig job;
  google::protobuf::TextFormat::ParseInfoTree tree;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!granary::ParseTextProto(text, kSource, &job, &tree).ok()) return 0;
  if (job.has_dataset() && !granary::ValidateDatasetConfig(job.dataset(), kSource, nullptr).ok()) {
    return 0;
  }
  (void)granary::ValidateJobConfig(job, job.has_dataset() ? job.dataset() : *named, kSource, &tree);
  return 0;
}
