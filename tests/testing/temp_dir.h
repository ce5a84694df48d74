// A fresh folder of this test process's own: ctest runs tests as parallel processes, which
// must not share files.
#ifndef GRANARY_TESTS_TESTING_TEMP_DIR_H_
#define GRANARY_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace granary {

// Creates <temp dir>/<prefix>-XXXXXX (mkdtemp) and returns its path; empty if it could not.
// The caller removes it.
std::string MakeTempDir(const std::string& prefix);

// For a fixture's TearDown: removes `dir` (a test's folder, with what its processes left there)
// if the running test passed; if it failed, keeps it for its logs and says where it is.
void RemoveTempDirUnlessFailed(const std::string& dir);

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_TEMP_DIR_H_
