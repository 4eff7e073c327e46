#include "common/config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
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
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseJsonConfig(ss.str(), path, out);
}

}  // namespace smig
