// Initial values of embedding rows.
//
// A row's initial value is a pure function of (initializer config, key): the same key gets
// the same row on every server, every run and after every restart, which makes tests exact
// and lets a pull of a never-pushed key be answered without storing it. ZEROS and UNIFORM
// use only integer and basic IEEE float arithmetic, so they are bit-identical on every
// platform; NORMAL goes through libm's log, sin and cos in double before rounding to float.
//
// Thread-safe: pure function.
#ifndef GRANARY_PS_INITIALIZER_H_
#define GRANARY_PS_INITIALIZER_H_

#include <cstdint>

#include "common/proto/config.pb.h"

namespace granary {

// Writes `dim` floats of the initial value of `key` into `row`.
void InitializeRow(const proto::InitializerConfig& config, uint64_t key, int dim, float* row);

}  // namespace granary

#endif  // GRANARY_PS_INITIALIZER_H_
