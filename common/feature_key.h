// Feature keys: the 64-bit identity of one feature value in one field.
//
// A key is XXH3-64 (xxHash 0.8, a stable, documented hash) of the value's bytes, seeded by
// XXH3-64 of the field name. The same token in two fields therefore gives two keys, and a
// key never changes between runs, machines or releases. Keys are uniform over [0, 2^64), which
// is what lets the shard map cut the key space into contiguous ranges without hot spots.
//
// Thread-safe: pure functions.
#ifndef GRANARY_COMMON_FEATURE_KEY_H_
#define GRANARY_COMMON_FEATURE_KEY_H_

#include <cstdint>
#include <string_view>

namespace granary {

// The seed of a field: hash the name once, reuse the seed for every token of the field.
uint64_t FieldSeed(std::string_view field_name);

// Key of `token` (the raw text of the feature value, e.g. "1193") in the field of `field_seed`.
uint64_t FeatureKey(uint64_t field_seed, std::string_view token);

// Convenience for one-off lookups; hashes the field name on every call.
uint64_t FeatureKey(std::string_view field_name, std::string_view token);

// Key of block `block` of dense table `table`: FeatureKey("dense/" + table, decimal block).
// Hashing spreads a large dense vector's blocks over all servers.
uint64_t DenseBlockKey(std::string_view table, uint64_t block);

}  // namespace granary

#endif  // GRANARY_COMMON_FEATURE_KEY_H_
