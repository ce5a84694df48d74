#include "common/config_location.h"

#include "absl/strings/str_cat.h"

namespace granary {

using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

std::string ConfigLocation::At(const std::string& field, int index) const {
  const FieldDescriptor* descriptor = message_.GetDescriptor()->FindFieldByName(field);
  // A repeated field has locations only per element (protobuf aborts on index -1).
  if (tree_ == nullptr || descriptor == nullptr || (descriptor->is_repeated() && index < 0)) {
    return source_;
  }
  TextFormat::ParseLocation location = tree_->GetLocation(descriptor, index);
  for (int earlier = index - 1; location.line < 0 && earlier >= 0; --earlier) {
    location = tree_->GetLocation(descriptor, earlier);
  }
  if (location.line < 0) return source_;
  return absl::StrCat(source_, ":", location.line + 1);
}

ConfigLocation ConfigLocation::Nested(const google::protobuf::Message& child,
                                      const std::string& field, int index) const {
  const FieldDescriptor* descriptor = message_.GetDescriptor()->FindFieldByName(field);
  const TextFormat::ParseInfoTree* tree = tree_ == nullptr || descriptor == nullptr
                                              ? nullptr
                                              : tree_->GetTreeForNested(descriptor, index);
  ConfigLocation nested(child, tree, source_);
  nested.here_ = At(field, index);
  return nested;
}

absl::Status ConfigLocation::Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

}  // namespace granary
