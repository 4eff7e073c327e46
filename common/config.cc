#include "common/config.h"

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "google/protobuf/util/json_util.h"

namespace smig {

absl::Status ParseJsonConfig(absl::string_view json, absl::string_view origin,
                             google::protobuf::Message& out) {
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(std::string(json), &out, o);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not a valid ",
                                                   out.GetDescriptor()->full_name(), ": ",
                                                   std::string(s.message())));
  }
  return absl::OkStatus();
}

absl::Status LoadJsonConfigInto(const std::string& path, google::protobuf::Message& out) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return absl::Status(text.status().code(), absl::StrCat("config file: ", text.status().message()));
  return ParseJsonConfig(*text, path, out);
}

}  // namespace smig
