// The command line every smig binary shares: flag names with dashes or underscores
// (--sctp-stack and --sctp_stack, since abseil flags only know the latter), --help,
// --version, and the logging flags (--v, --minloglevel; see common/logging.h).
//
//   int main(int argc, char** argv) {
//     std::vector<char*> args = smig::ParseFlags(argc, argv, "usage text");
//     LOG(INFO) << "started";
//   }
//
// --help (or -h) prints the usage text and this binary's own flags (those defined in
// smig's sources, wherever they live) and exits 0; --helpfull adds abseil's; --version
// prints "<program> <version>" and exits 0. An unknown flag is an error naming it (exit 1).
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace smig {

// Sets the usage message, handles --help/--version, rewrites "--flag-name" to
// "--flag_name" (the value after '=' is untouched; arguments after a bare "--" too),
// parses the flags and sets up logging. Returns the positional arguments, argv[0] first.
std::vector<char*> ParseFlags(int argc, char** argv, absl::string_view usage);

// For a command-line tool's main(): prints "<program>: <status>" to stderr and returns 2,
// the exit code of an error. (Servers log instead: common/server_main.h.)
//
//   if (!config.ok()) return smig::Fail(config.status());
int Fail(const absl::Status& status);

// smig's version ("0.1.0"), as --version prints it.
absl::string_view Version();

}  // namespace smig
