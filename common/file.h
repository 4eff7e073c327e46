// Reading a whole (small) file: configs, PEM files, tokens. One place for the open and
// read checks and their message.
//
//   absl::StatusOr<std::string> pem = ReadFile(path);
//   // NOT_FOUND "cannot read /etc/smig/ca.pem: No such file or directory"
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace smig {

// The file's bytes. NOT_FOUND when it cannot be opened, DATA_LOSS when reading it fails
// part way; the message names the path and the system's reason.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace smig
