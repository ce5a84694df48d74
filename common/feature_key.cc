#include "common/feature_key.h"

#include <xxhash.h>

#include <string>

namespace granary {

uint64_t FieldSeed(std::string_view field_name) {
  return XXH3_64bits(field_name.data(), field_name.size());
}

uint64_t FeatureKey(uint64_t field_seed, std::string_view token) {
  return XXH3_64bits_withSeed(token.data(), token.size(), field_seed);
}

uint64_t FeatureKey(std::string_view field_name, std::string_view token) {
  return FeatureKey(FieldSeed(field_name), token);
}

uint64_t DenseBlockKey(std::string_view table, uint64_t block) {
  std::string field = "dense/";
  field.append(table);
  return FeatureKey(field, std::to_string(block));
}

}  // namespace granary
