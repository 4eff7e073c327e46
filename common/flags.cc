#include "common/flags.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "common/logging_init.h"

// The logging flags live here, not beside the logger: glog's header declares C++ names
// FLAGS_v and FLAGS_minloglevel of its own (gflags), so no file may see both.
ABSL_FLAG(int, v, 0, "Verbose logging: VLOG(n) messages with n <= v are shown.");
ABSL_FLAG(int, minloglevel, 0,
          "Log messages at or above this level: 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL.");

namespace smig {
namespace {

std::string ProgramName(const char* argv0) {
  std::string name = argv0 != nullptr ? argv0 : "smig";
  return name.substr(name.rfind('/') + 1);
}

// A flag defined in smig's own sources (not abseil's, not a dependency's).
bool IsSmigFlag(absl::string_view file) {
  return !absl::StrContains(file, "absl/") && !absl::StrContains(file, "/usr/");
}

void PrintHelp(const std::string& program, absl::string_view usage, bool full) {
  std::cout << program << ": " << usage << "\n\nFlags:\n";
  std::map<std::string, const absl::CommandLineFlag*> sorted;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (full || IsSmigFlag(flag->Filename())) sorted.emplace(std::string(name), flag);
  }
  for (const auto& [name, flag] : sorted) {
    std::string shown = name;
    std::replace(shown.begin(), shown.end(), '_', '-');
    std::cout << "  --" << shown << "  " << flag->Help() << "\n";
    if (const std::string d = flag->DefaultValue(); !d.empty() && d != "\"\"") {
      std::cout << "      default: " << d << "\n";
    }
  }
  std::cout << "  --help, --helpfull, --version\n";
}

// The program's name for messages, set by ParseFlags.
std::string& ProgramNameForMessages() {
  static std::string* name = new std::string("smig");
  return *name;
}

}  // namespace

absl::string_view Version() { return SMIG_VERSION; }

int Fail(const absl::Status& status) {
  std::cerr << ProgramNameForMessages() << ": " << status << "\n";
  return 2;
}

std::vector<char*> ParseFlags(int argc, char** argv, absl::string_view usage) {
  const std::string program = ProgramName(argc > 0 ? argv[0] : nullptr);
  ProgramNameForMessages() = program;
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) { return IsSmigFlag(file); };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.version_string = [program] { return program + " " + std::string(Version()) + "\n"; };
  config.normalize_filename = [](absl::string_view f) { return std::string(f); };
  absl::SetFlagsUsageConfig(config);
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    // absl exits 1 after --help; a user asking for help did nothing wrong.
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "--helpshort" ||
        arg == "--helpfull" || arg == "-helpfull") {
      PrintHelp(program, usage, absl::StrContains(arg, "full"));
      std::exit(0);
    }
    if (arg.size() < 3 || arg[0] != '-') continue;
    size_t start = arg[1] == '-' ? 2 : 1;
    size_t end = std::min(arg.find('='), arg.size());
    for (size_t k = start; k < end; ++k) {
      if (argv[i][k] == '-') argv[i][k] = '_';
    }
  }
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  InitLogging(program, absl::GetFlag(FLAGS_v), absl::GetFlag(FLAGS_minloglevel));
  return positional;
}

}  // namespace smig
