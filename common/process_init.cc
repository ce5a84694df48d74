#include "common/process_init.h"

#include "gflags/gflags.h"
#include "glog/logging.h"

namespace granary {

void InitProcess(const char* usage, int* argc, char*** argv) {
  gflags::SetUsageMessage(usage);
  gflags::ParseCommandLineFlags(argc, argv, true);
  google::InitGoogleLogging((*argv)[0]);
  FLAGS_logtostderr = true;
}

}  // namespace granary
