// ConfigLocation: where a message of a parsed text-format config stood, so that a validator can
// name "file:line" of the field that breaks a rule (common/config.h parses with a parse tree).
//
// Thread-compatible: a view of a message, its parse tree and the source name, all owned by the
// caller, which must outlive it.
#ifndef GRANARY_COMMON_CONFIG_LOCATION_H_
#define GRANARY_COMMON_CONFIG_LOCATION_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace granary {

class ConfigLocation {
 public:
  // `tree` may be null (a config built in code, or a source without one): every location is
  // then just `source`.
  ConfigLocation(const google::protobuf::Message& message,
                 const google::protobuf::TextFormat::ParseInfoTree* tree, const std::string& source)
      : message_(message), tree_(tree), source_(source), here_(source) {}

  // "source:line" of `field` of the message (element `index` if repeated), or "source" when
  // the line is unknown. Protobuf records one location per list (`f: [a, b]`), the first
  // element's, so a later element of a list gets the line of the nearest earlier element that
  // has one.
  std::string At(const std::string& field, int index = -1) const;

  // The location of `child`, the message in `field` of this one (element `index` if repeated).
  ConfigLocation Nested(const google::protobuf::Message& child, const std::string& field,
                        int index = -1) const;

  // "source:line" where the message itself starts (the line of its field in the parent), or
  // "source" for the top-level message or when the line is unknown.
  const std::string& Here() const { return here_; }
  const std::string& source() const { return source_; }

  // InvalidArgument "<where>: <what>", the form of every config error.
  static absl::Status Invalid(const std::string& where, const std::string& what);

 private:
  const google::protobuf::Message& message_;
  const google::protobuf::TextFormat::ParseInfoTree* tree_;
  const std::string& source_;
  std::string here_;
};

}  // namespace granary

#endif  // GRANARY_COMMON_CONFIG_LOCATION_H_
