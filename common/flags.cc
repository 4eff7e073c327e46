#include "common/flags.h"

#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"

namespace smig {

std::vector<char*> ParseFlags(int argc, char** argv, absl::string_view usage) {
  absl::SetProgramUsageMessage(usage);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-') continue;
    size_t start = arg[1] == '-' ? 2 : 1;
    size_t end = std::min(arg.find('='), arg.size());
    for (size_t k = start; k < end; ++k) {
      if (argv[i][k] == '-') argv[i][k] = '_';
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace smig
