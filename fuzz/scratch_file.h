// ScratchFile: a file of the fuzz target's own, for decoders that read from a path
// (delta, vector and checkpoint-manifest readers). Created in a fresh folder under /dev/shm
// (memory: a file rewritten per execution costs microseconds there, milliseconds on a disk),
// else under $TMPDIR, else /tmp, on first use, and removed when the process exits.
//
// Thread-compatible: libFuzzer calls a target from one thread.
#ifndef GRANARY_FUZZ_SCRATCH_FILE_H_
#define GRANARY_FUZZ_SCRATCH_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace granary::fuzz {

// The scratch folder of this process, created on first call. Aborts if it cannot be created:
// a fuzz target that cannot write its input would report nothing.
const std::string& ScratchDir();

// Replaces the file `path` with `size` bytes at `data`. Aborts on a write error.
void WriteScratchFile(const std::string& path, const uint8_t* data, size_t size);

}  // namespace granary::fuzz

#endif  // GRANARY_FUZZ_SCRATCH_FILE_H_
