// Logging for all smig code: LOG(INFO|WARNING|ERROR|FATAL) << ...; VLOG(n) << ...;
// CHECK(cond) for "cannot happen".
//
//   #include "common/logging.h"
//   LOG(WARNING) << "PMM at " << address << " unreachable: " << status;
//   VLOG(1) << "probe association " << id << " up";   // shown with --v=1 or more
//
// The levels come from every binary's --v and --minloglevel (common/flags.h). Library
// code logs through this and never writes to std::cerr; only main() and command-line tools
// print for their users.
//
// Why glog: smig's target is abseil's logging (absl/log), whose macros these are, but
// Debian bookworm's abseil (20220623) predates absl/log. glog is the library absl/log grew
// out of, with the same LOG/VLOG/CHECK interface, so moving to absl/log later changes this
// header only.
#pragma once

#include <glog/logging.h>  // IWYU pragma: export
