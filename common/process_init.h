// The start of every Granary binary's main(): flags, then logging to stderr (launchers
// redirect each process's stderr to its own log file).
#ifndef GRANARY_COMMON_PROCESS_INIT_H_
#define GRANARY_COMMON_PROCESS_INIT_H_

namespace granary {

// Parses gflags (removing them from argv) with `usage` as the help text and starts glog.
void InitProcess(const char* usage, int* argc, char*** argv);

}  // namespace granary

#endif  // GRANARY_COMMON_PROCESS_INIT_H_
