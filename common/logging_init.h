// Internal to common/flags.cc: applies the logging flags to the logger. Code that logs
// includes common/logging.h instead.
#pragma once

#include <string>

namespace smig {

// Logs go to stderr, prefixed with severity, time and source line. `verbosity` is the
// highest VLOG level shown, `min_level` the lowest severity (0 INFO .. 3 FATAL). Safe to
// call more than once (the logger is set up on the first call; the levels on each).
void InitLogging(const std::string& program, int verbosity, int min_level);

}  // namespace smig
