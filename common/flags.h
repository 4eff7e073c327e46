// Lets every smig binary accept flag names with dashes as well as underscores
// (--sctp-stack and --sctp_stack), since abseil flags only know the latter.
//
//   int main(int argc, char** argv) {
//     std::vector<char*> args = smig::ParseFlags(argc, argv, "usage text");
//   }
#pragma once

#include <vector>

#include "absl/strings/string_view.h"

namespace smig {

// Sets the usage message, rewrites "--flag-name" to "--flag_name" (the value after '='
// is untouched; arguments after a bare "--" too) and parses the flags. Returns the
// positional arguments, argv[0] first.
std::vector<char*> ParseFlags(int argc, char** argv, absl::string_view usage);

}  // namespace smig
