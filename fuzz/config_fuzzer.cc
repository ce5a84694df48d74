// Fuzz target: the config text parsers (common/config.h). The input is parsed, and checked,
// both as a cluster config and as a dataset config, the way LoadClusterConfig and
// LoadDatasetConfig do with a file's text (with the ParseInfoTree their errors cite).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.h"

namespace {

constexpr char kSource[] = "fuzz.pbtxt";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    granary::proto::ClusterConfig config;
    google::protobuf::TextFormat::ParseInfoTree tree;
    if (granary::ParseTextProto(text, kSource, &config, &tree).ok()) {
      (void)granary::ValidateClusterConfig(config, kSource, &tree);
    }
  }
  {
    granary::proto::DatasetConfig config;
    google::protobuf::TextFormat::ParseInfoTree tree;
    if (granary::ParseTextProto(text, kSource, &config, &tree).ok()) {
      (void)granary::ValidateDatasetConfig(config, kSource, &tree);
    }
  }
  return 0;
}
