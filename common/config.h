// Typed configuration: a protobuf message read from a JSON file (protobuf JSON mapping).
// Unknown keys are errors, named in the message, so a typo never silently falls back to a
// default.
//
//   absl::StatusOr<smig::dataplane::v1::DataplaneConfig> c =
//       smig::LoadJsonConfig<smig::dataplane::v1::DataplaneConfig>("/etc/smig/dataplane.json");
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace smig {

// Parses `json` into `out`; INVALID_ARGUMENT naming `origin` and protobuf's reason (which
// names an unknown key) on failure.
absl::Status ParseJsonConfig(absl::string_view json, absl::string_view origin,
                             google::protobuf::Message& out);
// NOT_FOUND if the file cannot be read.
absl::Status LoadJsonConfigInto(const std::string& path, google::protobuf::Message& out);

template <typename Proto>
absl::StatusOr<Proto> LoadJsonConfig(const std::string& path) {
  Proto p;
  if (absl::Status s = LoadJsonConfigInto(path, p); !s.ok()) return s;
  return p;
}

}  // namespace smig
